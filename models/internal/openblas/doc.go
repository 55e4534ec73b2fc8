// Package openblas links OpenBLAS into a binary built with the `openblas` tag, for gonum's netlib
// bindings (gonum.org/v1/netlib/blas/netlib), which need the library but do not name it. It has no API.
package openblas
