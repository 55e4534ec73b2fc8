package models

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// lossOp computes a head's mean loss over the batch from (logits [n,k], labels [n]). It keeps the
// float64 value of the last run in last, which is what Grad and Predict report.
type lossOp struct {
	opBase
	head string
	n, k int
	last float64
}

func newLossOp(head string, n, k int) *lossOp {
	op := &lossOp{opBase: newOpBase("loss:"+head, 2, tensor.Shape{}, nil), head: head, n: n, k: k}
	op.need = []bool{true, false}
	return op
}

func (op *lossOp) Do(in ...G.Value) (G.Value, error) {
	z, y := f32s(in[0]), f32s(in[1])
	var sum float64
	for r := 0; r < op.n; r++ {
		sum += sampleLoss(op.head, z[r*op.k:(r+1)*op.k], y[r])
	}
	op.last = sum / float64(op.n)
	op.buf[0] = float32(op.last)
	return op.out, nil
}

func (op *lossOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d := &lossGradOp{opBase: newOpBase("loss_grad:"+op.head, 3, tensor.Shape{op.n, op.k}, nil), fwd: op}
	return G.Nodes{apply(d, grad, inputs[0], inputs[1]), nil}, nil
}

// sampleLoss is one sample's loss under head for logits z and label y (0 or 1).
func sampleLoss(head string, z []float32, y float32) float64 {
	switch head {
	case HeadBCE:
		x := float64(z[0])
		return max(x, 0) - x*float64(y) + math.Log1p(math.Exp(-math.Abs(x)))
	case HeadSoftmaxCE:
		c := classOf(y)
		return logSumExp2(float64(z[0]), float64(z[1])) - float64(z[c])
	default: // double_softmax: cross-entropy applied to the probabilities as if they were logits
		p0, p1 := softmax2(float64(z[0]), float64(z[1]))
		p := [2]float64{p0, p1}
		return logSumExp2(p0, p1) - p[classOf(y)]
	}
}

func classOf(y float32) int {
	if y >= 0.5 {
		return 1
	}
	return 0
}

func logSumExp2(a, b float64) float64 {
	m := max(a, b)
	return m + math.Log(math.Exp(a-m)+math.Exp(b-m))
}

func softmax2(a, b float64) (float64, float64) {
	m := max(a, b)
	ea, eb := math.Exp(a-m), math.Exp(b-m)
	return ea / (ea + eb), eb / (ea + eb)
}

// lossGradOp computes d(mean loss)/d logits from (upstream scalar, logits, labels).
type lossGradOp struct {
	opBase
	noDiff
	fwd *lossOp
}

func (op *lossGradOp) Do(in ...G.Value) (G.Value, error) {
	g := float64(scalarOf(in[0]))
	z, y, dz := f32s(in[1]), f32s(in[2]), op.buf
	n, k := op.fwd.n, op.fwd.k
	s := g / float64(n)
	for r := 0; r < n; r++ {
		zr, dr := z[r*k:(r+1)*k], dz[r*k:(r+1)*k]
		c := classOf(y[r])
		switch op.fwd.head {
		case HeadBCE:
			dr[0] = float32(s * (sigmoid(float64(zr[0])) - float64(y[r])))
		case HeadSoftmaxCE:
			p0, p1 := softmax2(float64(zr[0]), float64(zr[1]))
			d := [2]float64{p0, p1}
			d[c]--
			dr[0], dr[1] = float32(s*d[0]), float32(s*d[1])
		default:
			p0, p1 := softmax2(float64(zr[0]), float64(zr[1]))
			q0, q1 := softmax2(p0, p1)
			gp := [2]float64{q0, q1}
			gp[c]--
			dot := p0*gp[0] + p1*gp[1]
			dr[0] = float32(s * p0 * (gp[0] - dot))
			dr[1] = float32(s * p1 * (gp[1] - dot))
		}
	}
	return op.out, nil
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// probOp turns logits [n,k] into P(class 1) [n]: sigmoid for one logit, softmax(·)[1] for two (for
// double_softmax that is the first softmax's output, as the study's evaluation used).
type probOp struct {
	opBase
	noDiff
	n, k int
}

func newProbOp(n, k int) *probOp {
	return &probOp{opBase: newOpBase("prob", 1, tensor.Shape{n}, nil), n: n, k: k}
}

func (op *probOp) Do(in ...G.Value) (G.Value, error) {
	z := f32s(in[0])
	for r := 0; r < op.n; r++ {
		if op.k == 1 {
			op.buf[r] = float32(sigmoid(float64(z[r])))
			continue
		}
		_, p1 := softmax2(float64(z[2*r]), float64(z[2*r+1]))
		op.buf[r] = float32(p1)
	}
	return op.out, nil
}
