package models

import "golang.org/x/sys/cpu"

// adamAVX2 applies the update of adamConsts to p, g, m, v[0 : n/8*8] eight floats at a time.
//
//go:noescape
func adamAVX2(p, grad, m, v *float32, n int, c *adamConsts)

var hasAdamAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func adamAsm(p, g, m, v []float32, c *adamConsts) int {
	n := len(p) &^ 7
	if n > 0 {
		adamAVX2(&p[0], &g[0], &m[0], &v[0], n, c)
	}
	return n
}
