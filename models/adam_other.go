//go:build !amd64

package models

const hasAdamAsm = false

func adamAsm(p, g, m, v []float32, c *adamConsts) int { return 0 }
