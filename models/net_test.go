package models_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/models"
)

func TestSpecFrom(t *testing.T) {
	cfg := configs.ModelConfig{Fusion: "gmu", Head: "bce", Hidden: []int{32, 16}, Dropout: 0.25, ProjDim: 8}
	got := models.SpecFrom(cfg, 512)
	want := models.Spec{Fusion: "gmu", Head: "bce", Hidden: []int{32, 16}, Dropout: 0.25, ProjDim: 8, ImageDim: 512, TextDim: 512}
	if got.Fusion != want.Fusion || got.Head != want.Head || !slices.Equal(got.Hidden, want.Hidden) ||
		got.Dropout != want.Dropout || got.ProjDim != want.ProjDim || got.ImageDim != 512 || got.TextDim != 512 {
		t.Fatalf("SpecFrom: got %+v, want %+v", got, want)
	}
	cfg.Hidden[0] = 1
	if got.Hidden[0] != 32 {
		t.Errorf("SpecFrom shares the Hidden slice with the config")
	}
}

func TestNewRejectsBadSpec(t *testing.T) {
	good := models.Spec{Fusion: "concat", Head: "bce", Hidden: []int{4}, ProjDim: 2, ImageDim: 3, TextDim: 3}
	cases := []struct {
		name   string
		mutate func(*models.Spec)
		want   string
	}{
		{"fusion", func(s *models.Spec) { s.Fusion = "sum" }, "fusion"},
		{"head", func(s *models.Spec) { s.Head = "mse" }, "head"},
		{"hidden", func(s *models.Spec) { s.Hidden = []int{4, 0} }, "hidden[1]"},
		{"dropout", func(s *models.Spec) { s.Dropout = 1 }, "dropout"},
		{"dims", func(s *models.Spec) { s.ImageDim = 0 }, "dim"},
		{"proj", func(s *models.Spec) { s.Fusion, s.ProjDim = "align", 0 }, "proj_dim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good
			c.mutate(&s)
			_, err := models.New(s, 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: got error %v, want one naming %q", err, c.want)
			}
		})
	}
}

func TestBadBatch(t *testing.T) {
	net, err := models.New(models.Spec{Fusion: "concat", Head: "bce", Hidden: []int{4}, ImageDim: 3, TextDim: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ok := models.Batch{N: 2, Image: make([]float32, 6), Text: make([]float32, 4), Labels: []float32{0, 1}}
	cases := map[string]models.Batch{
		"empty":  {},
		"image":  {N: 2, Image: make([]float32, 5), Text: ok.Text, Labels: ok.Labels},
		"text":   {N: 2, Image: ok.Image, Text: make([]float32, 6), Labels: ok.Labels},
		"labels": {N: 2, Image: ok.Image, Text: ok.Text, Labels: []float32{0}},
		"label":  {N: 2, Image: ok.Image, Text: ok.Text, Labels: []float32{0, 2}},
	}
	for name, b := range cases {
		if _, err := net.Grad(b, 1, false); err == nil {
			t.Errorf("Grad(%s batch): got nil error", name)
		}
		if _, _, err := net.Predict(b); err == nil {
			t.Errorf("Predict(%s batch): got nil error", name)
		}
	}
	if _, err := net.Grad(ok, 1, false); err != nil {
		t.Errorf("Grad(good batch): %v", err)
	}
}

func TestParamsNamesAndCount(t *testing.T) {
	net, err := models.New(models.Spec{Fusion: "concat", Head: "bce", Hidden: []int{512}, Dropout: 0.2, ImageDim: 512, TextDim: 512}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range net.Params() {
		names = append(names, p.Name)
	}
	if want := []string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}; !slices.Equal(names, want) {
		t.Errorf("param names: got %v, want %v", names, want)
	}
	if got, want := net.NumParams(), 1024*512+512+512+1; got != want {
		t.Errorf("NumParams: got %d, want %d", got, want)
	}
	// PyTorch's nn.Linear init: U(±1/√fan_in).
	w := net.Params()[0].Value
	bound := float32(1 / math.Sqrt(1024))
	lo, hi := slices.Min(w), slices.Max(w)
	if lo < -bound || hi > bound || lo > -0.9*bound || hi < 0.9*bound {
		t.Errorf("fc1.weight in [%v, %v], want spread over ±%v", lo, hi, bound)
	}
}

func TestGradScaleAndAccumulate(t *testing.T) {
	spec := models.Spec{Fusion: "align", Head: "softmax_ce", Hidden: []int{6}, ProjDim: 3, ImageDim: 5, TextDim: 4}
	net, err := models.New(spec, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b1, b2 := randomBatch(rng, 4, 5, 4), randomBatch(rng, 3, 5, 4)
	grads := func() [][]float32 {
		var g [][]float32
		for _, p := range net.Params() {
			g = append(g, slices.Clone(p.Grad))
		}
		return g
	}
	mustGrad := func(b models.Batch, scale float32, acc bool) {
		if _, err := net.Grad(b, scale, acc); err != nil {
			t.Fatal(err)
		}
	}
	mustGrad(b1, 1, false)
	g1 := grads()
	mustGrad(b2, 1, false)
	g2 := grads()
	mustGrad(b1, 0.5, false)
	mustGrad(b2, 0.25, true)
	got := grads()
	for i := range got {
		for j := range got[i] {
			want := 0.5*g1[i][j] + 0.25*g2[i][j]
			if d := math.Abs(float64(got[i][j] - want)); d > 1e-6 {
				t.Fatalf("param %d[%d]: got %v, want 0.5·g1+0.25·g2 = %v", i, j, got[i][j], want)
			}
		}
	}
}

// TestNoGradientForInputs: the training graph differentiates the weights only, never the data (the
// first layer's input gradient would be a 64×1024×512 product thrown away each step).
func TestNoGradientForInputs(t *testing.T) {
	for _, f := range models.Fusions() {
		spec := models.Spec{Fusion: f, Head: "bce", Hidden: []int{8, 4}, Dropout: 0.2, ProjDim: 3, ImageDim: 6, TextDim: 5}
		net, err := models.New(spec, 1)
		if err != nil {
			t.Fatal(err)
		}
		ops, err := models.GraphOps(net, true, 4)
		if err != nil {
			t.Fatal(err)
		}
		var dx []string
		for _, op := range ops {
			if strings.HasPrefix(op, "linear_dx:") {
				dx = append(dx, strings.TrimPrefix(op, "linear_dx:"))
			}
		}
		slices.Sort(dx)
		// Only layers fed by learned values pass a gradient to their input; the projections and the
		// first classifier layer of concat/late/single-modality models read the data.
		want := map[string][]string{
			"late":  {"image.fc2", "image.fc3", "text.fc2", "text.fc3"},
			"align": {"fc1", "fc2", "fc3"}, "cross": {"fc1", "fc2", "fc3"}, "gmu": {"fc1", "fc2", "fc3"},
		}[f]
		if want == nil {
			want = []string{"fc2", "fc3"}
		}
		if !slices.Equal(dx, want) {
			t.Errorf("%s: input gradients computed for layers %v, want %v", f, dx, want)
		}
	}
}

func TestGradAllocatesLittle(t *testing.T) {
	spec := models.Spec{Fusion: "concat", Head: "bce", Hidden: []int{32}, Dropout: 0.2, ImageDim: 16, TextDim: 16}
	net, err := models.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(rand.New(rand.NewPCG(1, 1)), 64, 16, 16)
	if _, err := net.Grad(b, 1, false); err != nil {
		t.Fatal(err)
	}
	// What remains is Gorgonia's TapeMachine bookkeeping (a goroutine and channels per run, the
	// inputs slice of each instruction): about 80 small objects, none of them tensors.
	if a := testing.AllocsPerRun(20, func() { net.Grad(b, 1, false) }); a > 150 {
		t.Errorf("Grad allocates %v objects per step, want <= 150", a)
	}
}

// TestConcurrentNets: separate Nets may train in parallel goroutines (a sweep's trials) and get the
// same results as one at a time.
func TestConcurrentNets(t *testing.T) {
	spec := models.Spec{Fusion: "gmu", Head: "softmax_ce", Hidden: []int{8}, Dropout: 0.1, ProjDim: 4, ImageDim: 8, TextDim: 8}
	wantLosses, _ := trainTrace(t, spec, 7)
	type result struct {
		losses []float64
		err    error
	}
	done := make(chan result)
	for range 3 {
		go func() {
			l, _, err := runTrace(spec, 7)
			done <- result{l, err}
		}()
	}
	for range 3 {
		r := <-done
		if r.err != nil {
			t.Errorf("concurrent run: %v", r.err)
		} else if !slices.Equal(r.losses, wantLosses) {
			t.Errorf("concurrent run losses %v, want %v", r.losses, wantLosses)
		}
	}
}
