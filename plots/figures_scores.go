package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mami-lab/mami/experiments"
)

// Scored is one model's scores on a labelled set: P(misogynous) per sample.
type Scored struct {
	// Label is the legend entry; Key picks the style (Label when empty).
	Label, Key string
	Labels     []int
	Prob       []float32
}

func curveXYs(c experiments.Curve) plotter.XYs {
	xys := make(plotter.XYs, len(c.X))
	for i := range c.X {
		xys[i] = plotter.XY{X: c.X[i], Y: c.Y[i]}
	}
	return Simplify(xys)
}

// NewROCPR draws the ROC curve (left) and the precision–recall curve
// (right) of each scored model, with the chance line and the positive
// rate as baselines. The legend gives each model's AUROC and average
// precision.
func NewROCPR(name string, width, height vg.Length, scored []Scored) (*Figure, error) {
	roc := newPanel("(a) ROC", "false positive rate", "true positive rate")
	pr := newPanel("(b) precision–recall", "recall", "precision")
	f := &Figure{Name: name, Width: width, Height: height, Panels: []*plot.Plot{roc, pr}}
	gray := draw.LineStyle{Color: color.Gray{Y: 120}, Width: vg.Points(0.6), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}
	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	chance.LineStyle = gray
	roc.Add(chance)
	var pos, total int
	drawn := 0
	for _, s := range scored {
		if len(s.Labels) != len(s.Prob) {
			return nil, fmt.Errorf("plots: figure %s: %s has %d labels and %d scores", name, s.Label, len(s.Labels), len(s.Prob))
		}
		rc, pc := experiments.ROC(s.Labels, s.Prob), experiments.PR(s.Labels, s.Prob)
		if len(rc.X) == 0 || len(pc.X) == 0 {
			continue
		}
		drawn++
		key := s.Key
		if key == "" {
			key = s.Label
		}
		st := StyleFor(key)
		lr, err := styledLine(curveXYs(rc), st, 1)
		if err != nil {
			return nil, err
		}
		lp, err := styledLine(curveXYs(pc), st, 1)
		if err != nil {
			return nil, err
		}
		roc.Add(lr)
		pr.Add(lp)
		auc, ap := experiments.AUROC(s.Labels, s.Prob), experiments.AveragePrecision(s.Labels, s.Prob)
		f.Legend = append(f.Legend, LegendEntry{
			Label:  fmt.Sprintf("%s (AUROC %.3f, AP %.3f)", s.Label, auc, ap),
			Thumbs: []plot.Thumbnailer{lr},
		})
		for _, y := range s.Labels {
			pos += y
		}
		total += len(s.Labels)
	}
	if drawn == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	rate := float64(pos) / float64(total)
	base, err := plotter.NewLine(plotter.XYs{{X: 0, Y: rate}, {X: 1, Y: rate}})
	if err != nil {
		return nil, err
	}
	base.LineStyle = gray
	pr.Add(base)
	f.Legend = append(f.Legend, LegendEntry{Label: fmt.Sprintf("chance (ROC diagonal; PR positive rate %.2f)", rate), Thumbs: []plot.Thumbnailer{chance}})
	for _, p := range f.Panels {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.0
		p.X.Tick.Marker = unitTicks{}
		p.Y.Tick.Marker = unitTicks{}
	}
	return f, nil
}

// unitTicks labels 0, 0.2, …, 1 with minor ticks at the tenths.
type unitTicks struct{}

// Ticks implements plot.Ticker.
func (unitTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		if v < min-1e-9 || v > max+1e-9 {
			continue
		}
		t := plot.Tick{Value: v}
		if i%2 == 0 {
			t.Label = fmt.Sprintf("%.1f", v)
		}
		ts = append(ts, t)
	}
	return ts
}

// Interval is a point estimate with a confidence interval.
type Interval struct {
	// Label names the row; Key picks the colour (Label when empty).
	Label, Key    string
	Value, Lo, Hi float64
}

// NewIntervals draws one row per interval, the largest value at the top:
// a marker at the estimate and a whisker over the interval.
func NewIntervals(name, title, xlabel string, width, height vg.Length, items []Interval) (*Figure, error) {
	var rows []Interval
	for _, it := range items {
		if finite(it.Value) {
			rows = append(rows, it)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	slices.SortStableFunc(rows, func(a, b Interval) int { return cmpFloat(b.Value, a.Value) })
	p := newPanel(title, xlabel, "")
	p.Add(intervals(rows))
	names := make([]string, len(rows))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, r := range rows {
		names[i] = r.Label
		for _, v := range []float64{r.Value, r.Lo, r.Hi} {
			if finite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	categorical(&p.Y, names, true)
	p.Y.LineStyle.Width = vg.Points(0.5)
	p.Y.Min, p.Y.Max = -0.6, float64(len(rows))-0.4
	p.X.Min, p.X.Max = niceRange(lo, hi, 0.08, 0.02)
	return &Figure{Name: name, Width: width, Height: height, Panels: []*plot.Plot{p}}, nil
}

// intervals draws rows top-down (row 0 at the top).
type intervals []Interval

func (iv intervals) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, r := range iv {
		for _, v := range []float64{r.Value, r.Lo, r.Hi} {
			if finite(v) {
				xmin, xmax = math.Min(xmin, v), math.Max(xmax, v)
			}
		}
	}
	return xmin, xmax, 0, float64(len(iv) - 1)
}

func (iv intervals) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	capH := vg.Points(3)
	for i, r := range iv {
		key := r.Key
		if key == "" {
			key = r.Label
		}
		st := StyleFor(key)
		y := trY(float64(len(iv) - 1 - i))
		ls := draw.LineStyle{Color: st.Color, Width: vg.Points(1)}
		if finite(r.Lo) && finite(r.Hi) {
			x0, x1 := trX(r.Lo), trX(r.Hi)
			c.StrokeLine2(ls, x0, y, x1, y)
			c.StrokeLine2(ls, x0, y-capH, x0, y+capH)
			c.StrokeLine2(ls, x1, y-capH, x1, y+capH)
		}
		c.DrawGlyph(draw.GlyphStyle{Color: st.Color, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}},
			vg.Point{X: trX(r.Value), Y: y})
	}
}

// GlyphBoxes keeps the markers inside the data area.
func (iv intervals) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	var bs []plot.GlyphBox
	r := vg.Points(3)
	for i, it := range iv {
		for _, v := range []float64{it.Value, it.Lo, it.Hi} {
			if finite(v) {
				bs = append(bs, plot.GlyphBox{
					X: p.X.Norm(v), Y: p.Y.Norm(float64(len(iv) - 1 - i)),
					Rectangle: vg.Rectangle{Min: vg.Point{X: -r, Y: -r}, Max: vg.Point{X: r, Y: r}},
				})
			}
		}
	}
	return bs
}
