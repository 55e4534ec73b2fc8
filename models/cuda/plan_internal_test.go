package cuda

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda/kernels"
)

func testSpec(fusion, head string) models.Spec {
	return models.Spec{Fusion: fusion, Head: head, Hidden: []int{9, 7}, Dropout: 0.25, ProjDim: 4, ImageDim: 12, TextDim: 10}
}

// allSteps builds the training and eval plans of every fusion × head plus the optimizer and gather
// steps, with the arena sizes their buffers must fit in.
func allSteps(t *testing.T) (steps []step, sizes []map[int]int) {
	t.Helper()
	for _, f := range models.Fusions() {
		for _, h := range models.Heads() {
			l, a, err := newLayout(testSpec(f, h))
			if err != nil {
				t.Fatal(err)
			}
			st := newState(l)
			ds := newDeviceSetLayout(30, 12, 10)
			for _, train := range []bool{true, false} {
				p, err := newPlan(l, a, st, 5, train)
				if err != nil {
					t.Fatalf("%s/%s train=%v: %v", f, h, train, err)
				}
				size := map[int]int{arenaState: st.mem.size, arenaPlan: p.mem.size, arenaData: ds.mem.size}
				pre := p.gatherSteps(ds)
				for k, m := range p.masks {
					pre = append(pre, p.maskStep(m, -5, k, 0.25))
				}
				for _, s := range append(pre, p.steps...) {
					steps = append(steps, s)
					sizes = append(sizes, size)
				}
			}
			size := map[int]int{arenaState: st.mem.size}
			for _, s := range []step{
				{kind: opAdam, i: []int{l.total}, b: []bufRef{st.params, st.grads, st.m, st.v}, f: make([]float32, 9)},
				{kind: opSGD, i: []int{l.total}, b: []bufRef{st.params, st.grads}, f: make([]float32, 2)},
				{kind: opSumsq, i: []int{l.total}, b: []bufRef{st.grads, st.sumsq}},
				{kind: opClip, i: []int{l.total}, b: []bufRef{st.grads, st.sumsq}, f: make([]float32, 1)},
			} {
				steps = append(steps, s)
				sizes = append(sizes, size)
			}
		}
	}
	return steps, sizes
}

var sigRE = regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)

// kernelSignatures parses the parameter kinds of every kernel in mami.cu.
func kernelSignatures(t *testing.T) map[string][]string {
	t.Helper()
	sigs := map[string][]string{}
	for _, m := range sigRE.FindAllStringSubmatch(kernels.Source(), -1) {
		var kinds []string
		for _, p := range strings.Split(m[2], ",") {
			p = strings.TrimSpace(p)
			switch {
			case strings.Contains(p, "*"):
				kinds = append(kinds, "ptr")
			case strings.HasPrefix(p, "int "):
				kinds = append(kinds, "int")
			case strings.HasPrefix(p, "float "):
				kinds = append(kinds, "float")
			default:
				t.Fatalf("kernel %s: parameter %q of unknown kind", m[1], p)
			}
		}
		sigs[m[1]] = kinds
	}
	return sigs
}

func argKinds(args []any) []string {
	var kinds []string
	for _, a := range args {
		switch a.(type) {
		case argPtr:
			kinds = append(kinds, "ptr")
		case argInt:
			kinds = append(kinds, "int")
		case argFloat:
			kinds = append(kinds, "float")
		default:
			kinds = append(kinds, fmt.Sprintf("%T", a))
		}
	}
	return kinds
}

func TestArgsMatchKernelSignatures(t *testing.T) {
	sigs := kernelSignatures(t)
	if len(sigs) != len(kernels.Names) {
		t.Errorf("mami.cu has %d kernels, kernels.Names lists %d", len(sigs), len(kernels.Names))
	}
	steps, _ := allSteps(t)
	seen := map[opKind]bool{}
	for _, s := range steps {
		name := s.kernelName()
		want, ok := sigs[name]
		if !ok {
			t.Fatalf("step %v launches %s, which mami.cu does not define", s.kind, name)
		}
		if !slices.Contains(kernels.Names, name) {
			t.Errorf("kernel %s missing from kernels.Names", name)
		}
		args, err := s.args(func(b bufRef) uint64 { return uint64(b.off) + 1 }, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := argKinds(args); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: args %v, signature %v", name, got, want)
		}
		seen[s.kind] = true
	}
	for k := range opKind(len(opNames)) {
		if !seen[k] {
			t.Errorf("no plan uses step kind %v: untested arguments", k)
		}
	}
}

func TestStepBuffersFitTheirArenas(t *testing.T) {
	steps, sizes := allSteps(t)
	for i, s := range steps {
		for k, b := range s.b {
			if !b.valid() {
				if !(s.kind == opGemm && k == 3) && !(s.kind == opLoss && k == 3) {
					t.Errorf("%v arg %d: absent buffer where the kernel needs one", s.kind, k)
				}
				continue
			}
			if b.off < 0 || b.n <= 0 || b.off+b.n > sizes[i][b.arena] {
				t.Errorf("%v arg %d: [%d,%d) outside arena %d of %d elements", s.kind, k, b.off, b.off+b.n, b.arena, sizes[i][b.arena])
			}
		}
	}
}

func TestArenaAlignmentAndOverlap(t *testing.T) {
	l, a, err := newLayout(testSpec(models.FusionGMU, models.HeadBCE))
	if err != nil {
		t.Fatal(err)
	}
	st := newState(l)
	p, err := newPlan(l, a, st, 33, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ar := range []*arena{st.mem, p.mem} {
		end := 0
		for i, b := range ar.bufs {
			if b.off%align != 0 {
				t.Errorf("arena %d buffer %s at %d: not aligned to %d elements", ar.id, ar.names[i], b.off, align)
			}
			if b.off < end {
				t.Errorf("arena %d buffer %s at %d overlaps the previous one (ends %d)", ar.id, ar.names[i], b.off, end)
			}
			end = b.off + b.n
		}
		if end != ar.size {
			t.Errorf("arena %d size %d, last buffer ends at %d", ar.id, ar.size, end)
		}
	}
	if got, want := st.params.n, l.total; got != want {
		t.Errorf("params buffer %d elements, layout has %d", got, want)
	}
}

func TestLayoutMatchesModels(t *testing.T) {
	for _, f := range models.Fusions() {
		spec := testSpec(f, models.HeadSoftmaxCE)
		l, _, err := newLayout(spec)
		if err != nil {
			t.Fatal(err)
		}
		net, err := models.New(spec, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkLayout(l, net.Params()); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if l.total != net.NumParams() {
			t.Errorf("%s: layout has %d params, models %d", f, l.total, net.NumParams())
		}
		off := 0
		for _, p := range l.params {
			if p.off != off {
				t.Errorf("%s: param %s at %d, want contiguous %d", f, p.name, p.off, off)
			}
			size := 1
			for _, d := range p.shape {
				size *= d
			}
			off += size
		}
	}
}

func TestLaunchConfig(t *testing.T) {
	cases := []struct {
		name string
		s    step
		want launchConfig
	}{
		{"gemm bench forward 64×512", step{kind: opGemm, i: []int{0, 1, 64, 512, 1024, 1024, 1024, 512}}, launchConfig{[3]int{8, 1, 1}, [3]int{16, 16, 1}}},
		{"gemm dW 512×1024", step{kind: opGemm, i: []int{1, 0, 512, 1024, 64, 512, 1024, 1024}}, launchConfig{[3]int{16, 8, 1}, [3]int{16, 16, 1}}},
		{"gemm ragged 65×1", step{kind: opGemm, i: []int{0, 1, 65, 1, 7, 7, 7, 1}}, launchConfig{[3]int{1, 2, 1}, [3]int{16, 16, 1}}},
		{"elementwise 1", step{kind: opMul, i: []int{1}}, launchConfig{[3]int{1, 1, 1}, [3]int{256, 1, 1}}},
		{"elementwise 257", step{kind: opMul, i: []int{257}}, launchConfig{[3]int{2, 1, 1}, [3]int{256, 1, 1}}},
		{"elementwise capped", step{kind: opAdam, i: []int{1 << 30}}, launchConfig{[3]int{maxGrid, 1, 1}, [3]int{256, 1, 1}}},
		{"concat rows×(d1+d2)", step{kind: opConcat2, i: []int{64, 512, 512, 1}}, launchConfig{[3]int{256, 1, 1}, [3]int{256, 1, 1}}},
		{"colsum per column", step{kind: opColsum, i: []int{64, 300}}, launchConfig{[3]int{2, 1, 1}, [3]int{256, 1, 1}}},
		{"sum one block", step{kind: opSum, i: []int{4096}}, launchConfig{[3]int{1, 1, 1}, [3]int{256, 1, 1}}},
		{"loss per row", step{kind: opLoss, i: []int{2, 600, 1}}, launchConfig{[3]int{3, 1, 1}, [3]int{256, 1, 1}}},
		{"outer grad b n×q", step{kind: opOuterBwdB, i: []int{10, 64, 32}}, launchConfig{[3]int{2, 1, 1}, [3]int{256, 1, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.launch(); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestGradOutStepsTakeRuntimeScale(t *testing.T) {
	s := step{kind: opGemm, i: []int{1, 0, 4, 3, 2, 4, 3, 3}, b: []bufRef{{}, {}, {}, none}, f: []float32{7, 7}, gradOut: true}
	args, err := s.args(func(bufRef) uint64 { return 0 }, 0.25, true)
	if err != nil {
		t.Fatal(err)
	}
	if alpha, beta := args[5], args[10]; alpha != argFloat(0.25) || beta != argFloat(1) {
		t.Errorf("alpha, beta = %v, %v; want 0.25, 1 (scale, accumulate)", alpha, beta)
	}
}

// TestDeviceMasks checks mami_mask's twin: the dropped fraction is p, kept entries are 1/(1−p), the
// same (seed, stream) gives the same mask and another stream another one.
func TestDeviceMasks(t *testing.T) {
	const n = 200000
	r := &refBackend{}
	m, _ := r.alloc(3 * n)
	bases := &[3]mem{m, m, m}
	for _, p := range []float64{0.1, 0.25, 0.5} {
		draw := func(stream, at int) []float32 {
			pl := &plan{}
			s := pl.maskStep(bufRef{arena: arenaPlan, off: at, n: n}, 42, stream, p)
			if err := r.run(&s, bases, 1, false); err != nil {
				t.Fatal(err)
			}
			return r.mems[m][at : at+n]
		}
		a, b, c := draw(7, 0), draw(7, n), draw(8, 2*n)
		keep := float32(1 / (1 - p))
		dropped, differ := 0, 0
		for i := range a {
			if a[i] != 0 && a[i] != keep {
				t.Fatalf("p %v: mask value %v, want 0 or %v", p, a[i], keep)
			}
			if a[i] == 0 {
				dropped++
			}
			if a[i] != b[i] {
				t.Fatalf("p %v: same seed and stream gave different masks at %d", p, i)
			}
			if a[i] != c[i] {
				differ++
			}
		}
		if frac := float64(dropped) / n; frac < p-0.005 || frac > p+0.005 {
			t.Errorf("p %v: dropped fraction %.4f", p, frac)
		}
		if want := 2 * p * (1 - p) * n; float64(differ) < 0.9*want {
			t.Errorf("p %v: streams 7 and 8 differ at %d entries, want about %.0f", p, differ, want)
		}
	}
}
