//go:build openblas

package openblas

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int num_threads);
import "C"

// SetThreads sets how many threads OpenBLAS uses for one call.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }
