package plots

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ReproRun is one training run of the reproduction figure.
type ReproRun struct {
	// Head names the run's head in the panel title ("double_softmax").
	Head string
	// History is the run's history (rows as the run record stores them).
	History []map[string]any
}

// NewReproduction draws the reproduction figure: (a) the faithful run's
// loss (step, epoch mean, validation) against the values the study
// reported, (b) the same model with the correct head on the same y scale,
// and (c) the validation macro-F1 of both per epoch, which shows what the
// loss curves alone hide: how much the faithful head slows learning.
func NewReproduction(name string, width, height vg.Length, faithful, correct ReproRun, ref StudyReference) (*Figure, error) {
	sf, sc := ExtractLoss(faithful.History), ExtractLoss(correct.History)
	if len(sf.Step)+len(sf.Epoch) == 0 || len(sc.Step)+len(sc.Epoch) == 0 {
		return nil, fmt.Errorf("plots: figure %s: both runs need a loss history: %w", name, ErrNoData)
	}
	f := &Figure{Name: name, Width: width, Height: height}
	ymin, ymax := math.Inf(1), math.Inf(-1)
	xmax := 1.0
	for _, s := range []LossSeries{sf, sc} {
		for _, xys := range []plotter.XYs{s.Step, s.Epoch, s.Val} {
			for _, v := range xys {
				ymin, ymax = math.Min(ymin, v.Y), math.Max(ymax, v.Y)
				xmax = math.Max(xmax, v.X)
			}
		}
	}
	for _, pt := range ref.Points {
		if finite(pt.Loss) && finite(pt.Epoch) {
			ymin, ymax = math.Min(ymin, pt.Loss), math.Max(ymax, pt.Loss)
			xmax = math.Max(xmax, pt.Epoch)
		}
	}
	ylo, yhi := niceRange(ymin, ymax, 0.08, 0.05)
	ylo = math.Max(0, ylo)
	train, val := StyleFor("train"), StyleFor("val")
	for i, run := range []struct {
		r ReproRun
		s LossSeries
	}{{faithful, sf}, {correct, sc}} {
		title := fmt.Sprintf("(%c) %s head", 'a'+i, run.r.Head)
		p := newPanel(title, "epoch", "loss")
		step, err := styledLine(run.s.Step, Style{Color: faint(train.Color, 70)}, 0.5)
		if err != nil {
			return nil, err
		}
		if len(run.s.Step) > 0 {
			p.Add(step)
		}
		epoch, err := styledLine(run.s.Epoch, train, 1.2)
		if err != nil && len(run.s.Epoch) > 0 {
			return nil, err
		}
		epochPts, _ := styledPoints(run.s.Epoch, train, 1.8)
		if len(run.s.Epoch) > 0 {
			p.Add(epoch, epochPts)
		}
		vl, _ := styledLine(run.s.Val, val, 1.2)
		vpts, _ := styledPoints(run.s.Val, val, 1.8)
		if len(run.s.Val) > 0 {
			p.Add(vl, vpts)
		}
		if i == 0 {
			f.Legend = append(f.Legend,
				LegendEntry{Label: "train loss (per step)", Thumbs: []plot.Thumbnailer{step}},
				LegendEntry{Label: "train loss (epoch mean)", Thumbs: []plot.Thumbnailer{epoch, epochPts}},
				LegendEntry{Label: "validation loss", Thumbs: []plot.Thumbnailer{vl, vpts}})
			if e, err := refMarkers(p, ref); err != nil {
				return nil, err
			} else if e != nil {
				f.Legend = append(f.Legend, *e)
			}
		}
		p.Y.Min, p.Y.Max = ylo, yhi
		p.X.Min, p.X.Max = 0, math.Ceil(xmax)
		p.X.Tick.Marker = epochTicks{}
		f.Panels = append(f.Panels, p)
	}
	// (c) validation macro-F1 of both heads.
	p := newPanel("(c) validation macro-F1", "epoch", "macro-F1")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, run := range []ReproRun{faithful, correct} {
		xys := EpochMetric(run.History, "val/f1_macro")
		if len(xys) == 0 {
			continue
		}
		st := StyleFor(run.Head)
		l, _ := styledLine(xys, st, 1.2)
		pts, _ := styledPoints(xys, st, 1.8)
		p.Add(l, pts)
		f.Legend = append(f.Legend, LegendEntry{Label: "val macro-F1, " + run.Head, Thumbs: []plot.Thumbnailer{l, pts}})
		for _, v := range xys {
			lo, hi = math.Min(lo, v.Y), math.Max(hi, v.Y)
		}
	}
	if hi >= lo {
		p.Y.Min, p.Y.Max = niceRange(lo, hi, 0.1, 0.05)
	}
	p.X.Min, p.X.Max = 0, math.Ceil(xmax)
	p.X.Tick.Marker = epochTicks{}
	f.Panels = append(f.Panels, p)
	return f, nil
}

// refMarkers adds the study's reported values to p as black triangles and
// returns their legend entry, which spells the values out (labels beside
// the markers would sit on the run's own curves, which start at the same
// loss).
func refMarkers(p *plot.Plot, ref StudyReference) (*LegendEntry, error) {
	var xys plotter.XYs
	var vals []string
	for _, pt := range ref.Points {
		if finite(pt.Epoch) && finite(pt.Loss) {
			xys = append(xys, plotter.XY{X: pt.Epoch, Y: pt.Loss})
			vals = append(vals, strconv.FormatFloat(pt.Loss, 'g', 3, 64))
		}
	}
	if len(xys) == 0 {
		return nil, nil
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	sc.Color, sc.Shape, sc.Radius = colRef, draw.PyramidGlyph{}, vg.Points(3)
	p.Add(sc)
	label := ref.Label
	if label == "" {
		label = "study (reported)"
	}
	return &LegendEntry{Label: label + ": " + strings.Join(vals, " → "), Thumbs: []plot.Thumbnailer{sc}}, nil
}

// EpochMetric returns the values of key in history against the epoch of
// their row (rows without an epoch or a finite value are skipped).
func EpochMetric(history []map[string]any, key string) plotter.XYs {
	var xys plotter.XYs
	for _, row := range history {
		e, ok := Number(row["epoch"])
		if !ok {
			continue
		}
		if v, ok := Number(row[key]); ok && finite(v) {
			xys = append(xys, plotter.XY{X: e, Y: v})
		}
	}
	return xys
}
