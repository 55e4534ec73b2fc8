package plots

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Series is one line of a curve panel: the same quantity from one or more
// runs (seeds of one configuration). With several runs the line is their
// mean at each x and a band spans their minimum to maximum.
type Series struct {
	// Label is the legend entry; series of the same label in several panels
	// share one entry.
	Label string
	// Key picks the style (StyleFor); Label when empty.
	Key string
	// Runs are the points of each run, in increasing x.
	Runs []plotter.XYs
}

// CurvePanel is one panel of a curve figure.
type CurvePanel struct {
	Title, XLabel, YLabel string
	Series                []Series
	// LogX draws x on a log scale with a tick at every x value of the data.
	LogX bool
	// Epochs ticks x at whole epochs from 0.
	Epochs bool
	// Markers draws a marker at every mean point.
	Markers bool
	// Extra plotters drawn over the series (reference points, labels), with
	// their legend entries.
	Extra  []plot.Plotter
	Legend []LegendEntry
	// YMin and YMax fix the y range when YMax > YMin.
	YMin, YMax float64
}

// ErrEmpty is returned when a figure is given nothing to draw.
var ErrEmpty = errors.New("plots: nothing to draw")

// Aggregate returns the mean of runs at every x any of them has, and the
// minimum and maximum over the runs present at that x.
func Aggregate(runs []plotter.XYs) (mean, lo, hi plotter.XYs) {
	vals := map[float64][]float64{}
	for _, r := range runs {
		for _, p := range r {
			if finite(p.X) && finite(p.Y) {
				vals[p.X] = append(vals[p.X], p.Y)
			}
		}
	}
	xs := make([]float64, 0, len(vals))
	for x := range vals {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	for _, x := range xs {
		v := vals[x]
		sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
		for _, y := range v {
			sum += y
			mn, mx = math.Min(mn, y), math.Max(mx, y)
		}
		mean = append(mean, plotter.XY{X: x, Y: sum / float64(len(v))})
		lo = append(lo, plotter.XY{X: x, Y: mn})
		hi = append(hi, plotter.XY{X: x, Y: mx})
	}
	return mean, lo, hi
}

// Curves builds a figure of curve panels side by side with one shared legend
// below them.
func Curves(name string, width, height vg.Length, panels []CurvePanel) (*Figure, error) {
	if len(panels) == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	f := &Figure{Name: name, Width: width, Height: height}
	seen := map[string]bool{}
	drawn := 0
	for _, cp := range panels {
		p := newPanel(cp.Title, cp.XLabel, cp.YLabel)
		ymin, ymax := math.Inf(1), math.Inf(-1)
		var xvals []float64
		for _, s := range cp.Series {
			key := s.Key
			if key == "" {
				key = s.Label
			}
			st := StyleFor(key)
			mean, lo, hi := Aggregate(s.Runs)
			if len(mean) == 0 {
				continue
			}
			drawn++
			var entry LegendEntry
			entry.Label = s.Label
			if len(s.Runs) > 1 {
				band, err := bandPolygon(lo, hi)
				if err != nil {
					return nil, fmt.Errorf("plots: figure %s: %w", name, err)
				}
				band.Color = faint(st.Color, 55)
				p.Add(band)
				entry.Thumbs = append(entry.Thumbs, band)
			}
			l, err := styledLine(mean, st, 1.2)
			if err != nil {
				return nil, fmt.Errorf("plots: figure %s: %w", name, err)
			}
			p.Add(l)
			entry.Thumbs = append(entry.Thumbs, l)
			if cp.Markers || len(mean) <= 12 {
				sc, err := styledPoints(mean, st, 2)
				if err != nil {
					return nil, fmt.Errorf("plots: figure %s: %w", name, err)
				}
				p.Add(sc)
				entry.Thumbs = append(entry.Thumbs, sc)
			}
			for i := range mean {
				ymin, ymax = math.Min(ymin, lo[i].Y), math.Max(ymax, hi[i].Y)
				xvals = append(xvals, mean[i].X)
			}
			if !seen[s.Label] {
				seen[s.Label] = true
				f.Legend = append(f.Legend, entry)
			}
		}
		for _, e := range cp.Extra {
			p.Add(e)
			if r, ok := e.(plot.DataRanger); ok {
				_, _, y0, y1 := r.DataRange()
				ymin, ymax = math.Min(ymin, y0), math.Max(ymax, y1)
			}
		}
		for _, e := range cp.Legend {
			if !seen[e.Label] {
				seen[e.Label] = true
				f.Legend = append(f.Legend, e)
			}
		}
		if cp.YMax > cp.YMin {
			p.Y.Min, p.Y.Max = cp.YMin, cp.YMax
		} else if ymax >= ymin {
			p.Y.Min, p.Y.Max = niceRange(ymin, ymax, 0.06, 0.05)
		}
		switch {
		case cp.LogX:
			if err := logX(p, xvals); err != nil {
				return nil, fmt.Errorf("plots: figure %s: %w", name, err)
			}
		case cp.Epochs:
			p.X.Min = 0
			p.X.Max = math.Max(1, math.Ceil(p.X.Max))
			p.X.Tick.Marker = epochTicks{}
		}
		f.Panels = append(f.Panels, p)
	}
	if drawn == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	return f, nil
}

// bandPolygon is the area between lo and hi (same x values).
func bandPolygon(lo, hi plotter.XYs) (*plotter.Polygon, error) {
	ring := make(plotter.XYs, 0, 2*len(lo))
	ring = append(ring, lo...)
	for i := len(hi) - 1; i >= 0; i-- {
		ring = append(ring, hi[i])
	}
	if len(lo) == 1 { // a single x: a thin vertical bar would vanish; widen nothing, draw the segment
		ring = append(ring, lo[0])
	}
	band, err := plotter.NewPolygon(ring)
	if err != nil {
		return nil, err
	}
	band.LineStyle.Width = 0
	return band, nil
}

// logX puts p's x axis on a log scale with a labelled tick at every
// distinct positive x and a margin of a quarter decade on both sides.
func logX(p *plot.Plot, xs []float64) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	uniq := map[float64]bool{}
	for _, x := range xs {
		if x <= 0 {
			return fmt.Errorf("log x axis: value %g is not positive", x)
		}
		lo, hi = math.Min(lo, x), math.Max(hi, x)
		uniq[x] = true
	}
	if len(uniq) == 0 {
		return nil
	}
	p.X.Scale = plot.LogScale{}
	p.X.Min = lo / math.Pow(10, 0.2)
	p.X.Max = hi * math.Pow(10, 0.2)
	ticks := make([]plot.Tick, 0, len(uniq))
	for x := range uniq {
		ticks = append(ticks, plot.Tick{Value: x, Label: FormatLR(x)})
	}
	slices.SortFunc(ticks, func(a, b plot.Tick) int { return cmpFloat(a.Value, b.Value) })
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FormatLR writes a learning rate the way papers do: 1e-3, 3e-4, 0.01 →
// 1e-2.
func FormatLR(v float64) string {
	if v == 0 || !finite(v) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatFloat(v, 'e', -1, 64) // 3e-04, 1.5e-03
	mant, exp, _ := strings.Cut(s, "e")
	e, err := strconv.Atoi(exp)
	if err != nil {
		return s
	}
	return mant + "e" + strconv.Itoa(e)
}

// Simplify drops the interior points of straight runs of a polyline (three
// or more points on one line, to within 1e-12), which do not
// change how it is drawn: ROC and PR curves of thousands of test samples
// are mostly such runs, and this keeps their SVG and PDF small.
func Simplify(xys plotter.XYs) plotter.XYs {
	if len(xys) < 3 {
		return xys
	}
	out := plotter.XYs{xys[0]}
	for i := 1; i < len(xys)-1; i++ {
		a, b, c := out[len(out)-1], xys[i], xys[i+1]
		cross := (b.X-a.X)*(c.Y-a.Y) - (b.Y-a.Y)*(c.X-a.X)
		// Collinear and b between a and c: b adds nothing.
		if math.Abs(cross) <= 1e-12 && (b.X-a.X)*(c.X-b.X) >= 0 && (b.Y-a.Y)*(c.Y-b.Y) >= 0 {
			continue
		}
		out = append(out, b)
	}
	return append(out, xys[len(xys)-1])
}
