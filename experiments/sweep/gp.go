package sweep

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// gp is a Gaussian-process regression model with a Matérn 5/2 kernel on inputs in [0,1]^d, one length-scale
// per group of coordinates (a numeric parameter is one coordinate; a categorical parameter's one-hot block
// shares one length-scale), a signal amplitude and a noise variance. Targets are standardised before the fit.
type gp struct {
	groups []int // groups[i] is the length-scale index of coordinate i
	nls    int   // number of length-scales

	// hyperparameters
	ls    []float64
	amp   float64
	noise float64

	x           [][]float64
	y           []float64 // standardised
	mean, std   float64
	chol        mat.Cholesky
	alpha       *mat.VecDense
	conditionOK bool
}

// Bounds of the hyperparameters, searched in log space.
const (
	gpMinLS, gpMaxLS       = 0.02, 2.0
	gpMinAmp, gpMaxAmp     = 0.05, 10.0
	gpMinNoise, gpMaxNoise = 1e-6, 0.5
)

func newGP(groups []int) *gp {
	n := 0
	for _, g := range groups {
		n = max(n, g+1)
	}
	ls := make([]float64, n)
	for i := range ls {
		ls[i] = 0.3
	}
	return &gp{groups: groups, nls: n, ls: ls, amp: 1, noise: 1e-2}
}

func matern52(r float64) float64 {
	s := math.Sqrt(5) * r
	return (1 + s + s*s/3) * math.Exp(-s)
}

func (g *gp) kernel(a, b []float64) float64 {
	r2 := 0.0
	for i := range a {
		d := (a[i] - b[i]) / g.ls[g.groups[i]]
		r2 += d * d
	}
	return g.amp * matern52(math.Sqrt(r2))
}

// setData stores observations, standardising y.
func (g *gp) setData(x [][]float64, y []float64) {
	g.x = x
	m, s := 0.0, 0.0
	for _, v := range y {
		m += v
	}
	m /= float64(len(y))
	for _, v := range y {
		s += (v - m) * (v - m)
	}
	s = math.Sqrt(s / float64(len(y)))
	if s < 1e-12 {
		s = 1
	}
	g.mean, g.std = m, s
	g.y = make([]float64, len(y))
	for i, v := range y {
		g.y[i] = (v - m) / s
	}
}

// factor computes the Cholesky factor and alpha = K⁻¹y; it returns the log marginal likelihood.
func (g *gp) factor() float64 {
	n := len(g.x)
	k := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			v := g.kernel(g.x[i], g.x[j])
			if i == j {
				v += g.noise + 1e-9
			}
			k.SetSym(i, j, v)
		}
	}
	if ok := g.chol.Factorize(k); !ok {
		g.conditionOK = false
		return math.Inf(-1)
	}
	g.conditionOK = true
	y := mat.NewVecDense(n, g.y)
	g.alpha = mat.NewVecDense(n, nil)
	if err := g.chol.SolveVecTo(g.alpha, y); err != nil {
		g.conditionOK = false
		return math.Inf(-1)
	}
	return -0.5*mat.Dot(y, g.alpha) - 0.5*g.chol.LogDet() - 0.5*float64(n)*math.Log(2*math.Pi)
}

func clampLog(v, lo, hi float64) float64 { return math.Exp(min(max(v, math.Log(lo)), math.Log(hi))) }

func (g *gp) setTheta(theta []float64) {
	for i := range g.nls {
		g.ls[i] = clampLog(theta[i], gpMinLS, gpMaxLS)
	}
	g.amp = clampLog(theta[g.nls], gpMinAmp, gpMaxAmp)
	g.noise = clampLog(theta[g.nls+1], gpMinNoise, gpMaxNoise)
}

// fit maximises the log marginal likelihood over the log hyperparameters with Nelder–Mead from two starts,
// then factors the kernel matrix with the best.
func (g *gp) fit() {
	nt := g.nls + 2
	obj := func(theta []float64) float64 {
		g.setTheta(theta)
		lml := g.factor()
		// a weak log-normal prior on length-scales keeps the fit away from the bounds with few points
		for i := range g.nls {
			d := math.Log(g.ls[i] / 0.3)
			lml -= 0.5 * d * d / 4
		}
		if math.IsInf(lml, -1) || math.IsNaN(lml) {
			return 1e10
		}
		return -lml
	}
	best, bestF := []float64(nil), math.Inf(1)
	for _, start := range []struct{ ls, amp, noise float64 }{{0.3, 1, 1e-2}, {1, 1, 1e-3}} {
		x0 := make([]float64, nt)
		for i := range g.nls {
			x0[i] = math.Log(start.ls)
		}
		x0[g.nls], x0[g.nls+1] = math.Log(start.amp), math.Log(start.noise)
		x, f := nelderMead(obj, x0, 0.5, 80*nt)
		if f < bestF {
			best, bestF = x, f
		}
	}
	g.setTheta(best)
	g.factor()
}

// predict returns the posterior mean and standard deviation at x, in standardised units.
func (g *gp) predict(x []float64) (mu, sd float64) {
	n := len(g.x)
	if !g.conditionOK || n == 0 {
		return 0, math.Sqrt(g.amp)
	}
	ks := mat.NewVecDense(n, nil)
	for i := range n {
		ks.SetVec(i, g.kernel(x, g.x[i]))
	}
	mu = mat.Dot(ks, g.alpha)
	v := mat.NewVecDense(n, nil)
	if err := g.chol.SolveVecTo(v, ks); err != nil {
		return mu, math.Sqrt(g.amp)
	}
	variance := g.amp - mat.Dot(ks, v)
	return mu, math.Sqrt(max(variance, 1e-12))
}

// expectedImprovement over best (standardised, larger is better) with exploration margin xi.
func expectedImprovement(mu, sd, best, xi float64) float64 {
	if sd <= 0 {
		return max(mu-best-xi, 0)
	}
	z := (mu - best - xi) / sd
	return (mu-best-xi)*distuv.UnitNormal.CDF(z) + sd*distuv.UnitNormal.Prob(z)
}

// addBeliever conditions the model on a pending point at its own predicted mean (the kriging believer), so
// the next proposal avoids it; the hyperparameters stay as fitted.
func (g *gp) addBeliever(x []float64) {
	mu, _ := g.predict(x)
	g.x = append(g.x, x)
	g.y = append(g.y, mu)
	g.factor()
}

// nelderMead minimises f from x0 with the standard reflection/expansion/contraction/shrink steps
// (coefficients 1, 2, 0.5, 0.5), an initial simplex of side step, and at most maxEval evaluations.
func nelderMead(f func([]float64) float64, x0 []float64, step float64, maxEval int) ([]float64, float64) {
	n := len(x0)
	pts := make([][]float64, n+1)
	vals := make([]float64, n+1)
	for i := range pts {
		pts[i] = slices.Clone(x0)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = f(pts[i])
	}
	evals := n + 1
	at := func(c []float64, w []float64, t float64) []float64 { // c + t*(c - w)
		out := make([]float64, n)
		for j := range out {
			out[j] = c[j] + t*(c[j]-w[j])
		}
		return out
	}
	for evals < maxEval {
		idx := make([]int, n+1)
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(vals[a], vals[b]) })
		sp, sv := make([][]float64, n+1), make([]float64, n+1)
		for i, k := range idx {
			sp[i], sv[i] = pts[k], vals[k]
		}
		pts, vals = sp, sv
		if math.Abs(vals[n]-vals[0]) < 1e-7*(1+math.Abs(vals[0])) {
			break
		}
		c := make([]float64, n)
		for _, p := range pts[:n] {
			for j := range c {
				c[j] += p[j] / float64(n)
			}
		}
		r := at(c, pts[n], 1)
		fr := f(r)
		evals++
		switch {
		case fr < vals[0]:
			e := at(c, pts[n], 2)
			fe := f(e)
			evals++
			if fe < fr {
				pts[n], vals[n] = e, fe
			} else {
				pts[n], vals[n] = r, fr
			}
		case fr < vals[n-1]:
			pts[n], vals[n] = r, fr
		default:
			k := at(c, pts[n], -0.5)
			fk := f(k)
			evals++
			if fk < vals[n] {
				pts[n], vals[n] = k, fk
				continue
			}
			for i := 1; i <= n; i++ {
				for j := range pts[i] {
					pts[i][j] = pts[0][j] + 0.5*(pts[i][j]-pts[0][j])
				}
				vals[i] = f(pts[i])
				evals++
			}
		}
	}
	best := 0
	for i := range vals {
		if vals[i] < vals[best] {
			best = i
		}
	}
	return pts[best], vals[best]
}
