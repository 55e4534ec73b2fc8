//go:build openblas

package models

import (
	"github.com/mami-lab/mami/models/internal/openblas"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLAS names the BLAS implementation the package's matrix products use.
const BLAS = "openblas"

// splitGEMM: the linear ops split their large products across cores themselves, each part a
// single-threaded OpenBLAS call. OpenBLAS's own threads spin between calls and fight the optimizer's
// workers for the cores; Go's workers sleep.
const splitGEMM = true

var impl = netlib.Implementation{}

func init() {
	openblas.SetThreads(1)
	// Gorgonia's own ops (and tensor's) use OpenBLAS too.
	G.Use(netlib.Implementation{})
}
