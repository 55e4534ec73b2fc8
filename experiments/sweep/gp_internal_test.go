package sweep

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestNelderMeadRosenbrock(t *testing.T) {
	f := func(x []float64) float64 {
		a, b := 1-x[0], x[1]-x[0]*x[0]
		return a*a + 100*b*b
	}
	x, v := nelderMead(f, []float64{-1.2, 1}, 0.5, 2000)
	if v > 1e-4 || math.Abs(x[0]-1) > 0.02 || math.Abs(x[1]-1) > 0.04 {
		t.Errorf("got f(%v) = %g, want the minimum 0 at (1, 1)", x, v)
	}
}

func TestGPFitsSmoothFunction(t *testing.T) {
	truth := func(x float64) float64 { return math.Sin(6*x) + 0.5*x }
	rng := rand.New(rand.NewPCG(1, 2))
	var xs [][]float64
	var ys []float64
	for range 15 {
		x := rng.Float64()
		xs = append(xs, []float64{x})
		ys = append(ys, truth(x)+0.01*rng.NormFloat64())
	}
	g := newGP([]int{0})
	g.setData(xs, ys)
	g.fit()
	if g.ls[0] < 0.05 || g.ls[0] > 2 {
		t.Errorf("fitted length-scale %g, want one near the function's scale (~0.2–0.5)", g.ls[0])
	}
	worst := 0.0
	for x := 0.05; x < 0.95; x += 0.05 {
		mu, sd := g.predict([]float64{x})
		got := mu*g.std + g.mean
		worst = max(worst, math.Abs(got-truth(x)))
		if sd <= 0 || math.IsNaN(sd) {
			t.Fatalf("sd at %g: %g", x, sd)
		}
	}
	if worst > 0.15 {
		t.Errorf("worst error of the posterior mean %g, want < 0.15", worst)
	}
	// at an observed point the uncertainty is small; far from the data it is large
	_, near := g.predict(xs[0])
	_, far := g.predict([]float64{3})
	if !(near < 0.2 && far > 0.8) {
		t.Errorf("sd at a data point %g, far away %g", near, far)
	}
}

func TestExpectedImprovement(t *testing.T) {
	tests := []struct{ mu, sd, best, want float64 }{
		{0, 1, 0, 0.3989}, // sd·φ(0)
		{1, 0, 0, 1},      // certain improvement
		{-1, 0, 0, 0},     // certain loss
	}
	for _, tt := range tests {
		if got := expectedImprovement(tt.mu, tt.sd, tt.best, 0); math.Abs(got-tt.want) > 1e-3 {
			t.Errorf("EI(mu=%g, sd=%g, best=%g) = %g, want %g", tt.mu, tt.sd, tt.best, got, tt.want)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	spec, err := Parse("x.yaml", []byte(`method: bayes
metric: {name: m}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
  model.dropout: {distribution: normal, mu: 0.2, sigma: 0.05}
  train.epochs: {distribution: int_uniform, min: 1, max: 9}
  model.fusion: {values: [concat, late, gmu]}
  model.head: {value: softmax_ce}
`))
	if err != nil {
		t.Fatal(err)
	}
	if g := spec.groups(); len(g) != 6 || g[3] != 3 || g[5] != 3 {
		t.Fatalf("groups %v, want 3 numeric coordinates then a one-hot block of 3 sharing one length-scale", g)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		p := spec.randomParams(rng)
		x := spec.encode(p)
		back := spec.decode(x)
		for k, v := range p {
			if f, ok := v.(float64); ok {
				if math.Abs(f-back[k].(float64)) > 1e-9*math.Max(1, math.Abs(f)) {
					t.Fatalf("%s: %v -> %v -> %v", k, v, x, back[k])
				}
			} else if back[k] != v {
				t.Fatalf("%s: %v -> %v -> %v", k, v, x, back[k])
			}
		}
	}
	// the log scale: the middle of the unit interval is the geometric middle of the range
	if got := spec.decode([]float64{0.5, 0.5, 0.5, 1, 0, 0})["train.lr"].(float64); math.Abs(got-1e-3) > 1e-9 {
		t.Errorf("lr at u=0.5: got %g, want 1e-3", got)
	}
}

func BenchmarkBayesSuggest(b *testing.B) {
	spec, err := Parse("x.yaml", []byte(`method: bayes
metric: {name: m, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
  model.dropout: {min: 0.0, max: 0.6}
  model.fusion: {values: [concat, late, align, cross, gmu, image_only, text_only]}
`))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var done []observation
	for range 30 {
		p := spec.randomParams(rng)
		done = append(done, observation{params: p, score: -math.Pow(math.Log10(p["train.lr"].(float64))+3, 2)})
	}
	running := []map[string]any{spec.randomParams(rng), spec.randomParams(rng)}
	b.ReportAllocs()
	for b.Loop() {
		spec.bayesSuggest(rand.New(rand.NewPCG(2, 2)), done, running)
	}
}
