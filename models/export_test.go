package models

import "math/rand/v2"

// ResetDropout restarts the dropout-mask stream of net from seed, so a test can evaluate the same
// training-mode function twice (finite differences).
func ResetDropout(net *Net, seed uint64) {
	net.maskRNG = rand.New(rand.NewPCG(seed, streamDropout))
}

// UsePortableKernel makes an Adam/AdamW optimizer skip its assembly kernel.
func UsePortableKernel(opt Optimizer) {
	if a, ok := opt.(*adam); ok {
		a.noAsm = true
	}
}

// GraphOps lists the ops of net's graph for batch size n in training or eval mode.
func GraphOps(net *Net, train bool, n int) ([]string, error) {
	prog, err := net.program(train, n)
	if err != nil {
		return nil, err
	}
	var ops []string
	for _, node := range prog.g.AllNodes() {
		if op := node.Op(); op != nil {
			ops = append(ops, op.String())
		}
	}
	return ops, nil
}
