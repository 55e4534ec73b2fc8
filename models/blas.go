//go:build !openblas

package models

import "gonum.org/v1/gonum/blas/gonum"

// BLAS names the BLAS implementation the package's matrix products use.
const BLAS = "gonum"

// splitGEMM: gonum's Sgemm already spreads large products across cores.
const splitGEMM = false

var impl = gonum.Implementation{}
