// Package plots draws the figures of a run: the loss curve written to a run's
// plots/ folder (loss.png and loss.svg) and, later, the report's figures.
//
// # Input
//
// Every figure is drawn from a run's history as the run record stores it: a
// slice of rows, one map per optimizer step, as returned by
// runs.(*Run).History or collected from an experiments.Sink. Values may be any
// Go number type (float64 after a JSON round trip); rows without a key are
// skipped for that series, and non-finite values (NaN, ±Inf, which the
// record keeps as W&B literals) are left out of the lines.
//
// # The loss figure
//
// The x axis is in epochs. Each optimizer step's train/loss is drawn as a
// faint line at its fractional epoch (step k of n in epoch e sits at
// e-1+k/n); train/epoch_loss and val/loss are drawn per epoch with markers at
// whole epochs. A StudyReference adds the values reported by the study being
// reproduced as black markers with their own legend entry.
package plots

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/mami-lab/mami/internal/atomicfile"
)

// DefaultWidth and DefaultHeight are the size of the loss figure when
// LossOptions leaves them zero: 16 cm × 10 cm, which renders at LossDPI to a
// PNG of 907×567 pixels.
const (
	DefaultWidth  = 16 * vg.Centimeter
	DefaultHeight = 10 * vg.Centimeter
)

// LossDPI is the resolution of loss.png: sharp in a notebook or a report
// without making the files large.
const LossDPI = 144

// RefPoint is one value reported by a study: the loss at an epoch (0 is the
// start of training).
type RefPoint struct {
	Epoch float64
	Loss  float64
}

// StudyReference is a set of published loss values drawn over a run's curves
// so a reproduction can be judged by eye.
type StudyReference struct {
	// Label is the legend entry; "study (reported)" when empty.
	Label string
	// Points are the reported values.
	Points []RefPoint
}

// SeedStudy is the reference for the seed preset: the study reports a
// training loss of 0.69 at the start and 0.483 after epoch 10.
var SeedStudy = StudyReference{
	Label:  "study (reported)",
	Points: []RefPoint{{Epoch: 0, Loss: 0.69}, {Epoch: 10, Loss: 0.483}},
}

// LossOptions configures the loss figure. The zero value draws the run's
// curves alone at the default size.
type LossOptions struct {
	// Title is the figure title; "Loss" when empty.
	Title string
	// Reference, when non-nil, adds the study's reported values.
	Reference *StudyReference
	// Width and Height are the figure size; DefaultWidth and DefaultHeight
	// when zero.
	Width, Height vg.Length
}

// ErrNoData is returned when the history has no finite loss value to draw.
var ErrNoData = errors.New("plots: history has no loss values")

// Colours of the series: the step loss is the epoch loss's blue, made faint.
var (
	colTrain     = color.NRGBA{R: 31, G: 119, B: 180, A: 255}
	colTrainStep = color.NRGBA{R: 31, G: 119, B: 180, A: 60}
	colVal       = color.NRGBA{R: 214, G: 39, B: 40, A: 255}
	colRef       = color.NRGBA{A: 255}
)

// Loss draws the loss figure of history into dir as loss.png and loss.svg and
// returns the paths written. dir is created if needed.
func Loss(dir string, history []map[string]any, opts LossOptions) ([]string, error) {
	p, err := NewLossPlot(history, opts)
	if err != nil {
		return nil, err
	}
	w, h := size(opts)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: create %s: %w", dir, err)
	}
	var paths []string
	for _, name := range []string{"loss.png", "loss.svg"} {
		path := filepath.Join(dir, name)
		if err := save(p, w, h, path); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// save renders p into path through a temporary file so that a reader never
// sees half a figure. PNGs are rendered at DPI.
func save(p *plot.Plot, w, h vg.Length, path string) (err error) {
	var wt io.WriterTo
	switch filepath.Ext(path) {
	case ".png":
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(LossDPI))
		p.Draw(draw.New(c))
		wt = vgimg.PngCanvas{Canvas: c}
	default:
		if wt, err = p.WriterTo(w, h, strings.TrimPrefix(filepath.Ext(path), ".")); err != nil {
			return fmt.Errorf("plots: write %s: %w", path, err)
		}
	}
	if err := atomicfile.Write(path, false, func(f io.Writer) error {
		_, err := wt.WriteTo(f)
		return err
	}); err != nil {
		return fmt.Errorf("plots: write %s: %w", path, err)
	}
	return nil
}

func size(opts LossOptions) (vg.Length, vg.Length) {
	w, h := opts.Width, opts.Height
	if w <= 0 {
		w = DefaultWidth
	}
	if h <= 0 {
		h = DefaultHeight
	}
	return w, h
}

// LossSeries are the points of the loss figure extracted from a history.
type LossSeries struct {
	Step  plotter.XYs // train/loss at fractional epochs
	Epoch plotter.XYs // train/epoch_loss at whole epochs
	Val   plotter.XYs // val/loss at whole epochs
}

// ExtractLoss pulls the loss series out of history. Rows without an integer
// epoch fall back to _step for the step series (then the x axis counts
// steps, which only happens for histories that did not come from the
// trainer).
func ExtractLoss(history []map[string]any) LossSeries {
	// Count the steps of each epoch so step k of n sits at e-1+k/n.
	perEpoch := map[float64]int{}
	for _, row := range history {
		if _, ok := Number(row["train/loss"]); !ok {
			continue
		}
		if e, ok := Number(row["epoch"]); ok {
			perEpoch[e]++
		}
	}
	var s LossSeries
	seen := map[float64]int{}
	for i, row := range history {
		e, hasEpoch := Number(row["epoch"])
		if v, ok := Number(row["train/loss"]); ok {
			var x float64
			if hasEpoch {
				seen[e]++
				x = e - 1 + float64(seen[e])/float64(perEpoch[e])
			} else if st, ok := Number(row["_step"]); ok {
				x = st
			} else {
				x = float64(i + 1)
			}
			if finite(v) {
				s.Step = append(s.Step, plotter.XY{X: x, Y: v})
			}
		}
		if !hasEpoch {
			continue
		}
		if v, ok := Number(row["train/epoch_loss"]); ok && finite(v) {
			s.Epoch = append(s.Epoch, plotter.XY{X: e, Y: v})
		}
		if v, ok := Number(row["val/loss"]); ok && finite(v) {
			s.Val = append(s.Val, plotter.XY{X: e, Y: v})
		}
	}
	return s
}

// NewLossPlot builds the loss figure without writing it, for callers that
// render it elsewhere (a report, a notebook).
func NewLossPlot(history []map[string]any, opts LossOptions) (*plot.Plot, error) {
	s := ExtractLoss(history)
	if len(s.Step)+len(s.Epoch)+len(s.Val) == 0 {
		return nil, ErrNoData
	}
	p := plot.New()
	p.Title.Text = opts.Title
	if p.Title.Text == "" {
		p.Title.Text = "Loss"
	}
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 225}
	grid.Horizontal.Color = color.Gray{Y: 225}
	p.Add(grid)

	if len(s.Step) > 0 {
		l, err := plotter.NewLine(s.Step)
		if err != nil {
			return nil, fmt.Errorf("plots: step loss: %w", err)
		}
		l.Color = colTrainStep
		l.Width = vg.Points(0.75)
		p.Add(l)
		p.Legend.Add("train/loss (step)", l)
	}
	if len(s.Epoch) > 0 {
		l, sc, err := plotter.NewLinePoints(s.Epoch)
		if err != nil {
			return nil, fmt.Errorf("plots: epoch loss: %w", err)
		}
		l.Color, l.Width = colTrain, vg.Points(1.5)
		sc.Color, sc.Shape, sc.Radius = colTrain, draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(l, sc)
		p.Legend.Add("train/epoch_loss", l, sc)
	}
	if len(s.Val) > 0 {
		l, sc, err := plotter.NewLinePoints(s.Val)
		if err != nil {
			return nil, fmt.Errorf("plots: val loss: %w", err)
		}
		l.Color, l.Width = colVal, vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		sc.Color, sc.Shape, sc.Radius = colVal, draw.SquareGlyph{}, vg.Points(2.5)
		p.Add(l, sc)
		p.Legend.Add("val/loss", l, sc)
	}
	if ref := opts.Reference; ref != nil && len(ref.Points) > 0 {
		if err := addReference(p, ref); err != nil {
			return nil, err
		}
	}
	layout(p, s, opts.Reference)
	return p, nil
}

func addReference(p *plot.Plot, ref *StudyReference) error {
	xys := make(plotter.XYs, 0, len(ref.Points))
	labels := make([]string, 0, len(ref.Points))
	for _, pt := range ref.Points {
		if !finite(pt.Epoch) || !finite(pt.Loss) {
			continue
		}
		xys = append(xys, plotter.XY{X: pt.Epoch, Y: pt.Loss})
		labels = append(labels, strconv.FormatFloat(pt.Loss, 'g', 3, 64))
	}
	if len(xys) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("plots: reference: %w", err)
	}
	sc.Color, sc.Shape, sc.Radius = colRef, draw.PyramidGlyph{}, vg.Points(4)
	p.Add(sc)
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return fmt.Errorf("plots: reference labels: %w", err)
	}
	// Label each marker below it (the run's curves usually pass above the
	// study's end point), on the side facing the middle of the figure so
	// labels at the axis ends stay inside the plot.
	xmid := (xys[0].X + xys[len(xys)-1].X) / 2
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Size = vg.Points(8)
		lab.TextStyle[i].XAlign = draw.XLeft
		lab.TextStyle[i].YAlign = draw.YTop
		if xys[i].X > xmid {
			lab.TextStyle[i].XAlign = draw.XRight
		}
	}
	lab.Offset = vg.Point{Y: -vg.Points(6)}
	p.Add(lab)
	name := ref.Label
	if name == "" {
		name = "study (reported)"
	}
	p.Legend.Add(name, sc)
	return nil
}

// layout fixes the axis ranges: x from 0 to the last epoch with whole-epoch
// ticks, and y with head room above the data so the legend in the top right
// corner sits over empty space (losses fall, so the top right is where the
// curves are not).
func layout(p *plot.Plot, s LossSeries, ref *StudyReference) {
	ymin, ymax := math.Inf(1), math.Inf(-1)
	xmax := 0.0
	each := func(xys plotter.XYs) {
		for _, v := range xys {
			ymin, ymax = math.Min(ymin, v.Y), math.Max(ymax, v.Y)
			xmax = math.Max(xmax, v.X)
		}
	}
	each(s.Step)
	each(s.Epoch)
	each(s.Val)
	if ref != nil {
		for _, pt := range ref.Points {
			if finite(pt.Epoch) && finite(pt.Loss) {
				ymin, ymax = math.Min(ymin, pt.Loss), math.Max(ymax, pt.Loss)
				xmax = math.Max(xmax, pt.Epoch)
			}
		}
	}
	span := ymax - ymin
	if span <= 0 {
		span = math.Max(math.Abs(ymax)*0.1, 0.1)
	}
	p.Y.Min = math.Max(0, ymin-0.05*span)
	if ymin < 0 {
		p.Y.Min = ymin - 0.05*span
	}
	// The legend has up to four entries; 40 % head room keeps it clear of
	// the curves at the default size.
	p.Y.Max = ymax + 0.4*span
	p.X.Min = 0
	p.X.Max = math.Max(1, math.Ceil(xmax))
	p.X.Tick.Marker = epochTicks{}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.ThumbnailWidth = vg.Points(22)
}

// epochTicks labels whole epochs, thinning the labels so at most about ten
// are shown.
type epochTicks struct{}

// Ticks implements plot.Ticker.
func (epochTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	if hi-lo > 1e6 || hi < lo {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	step := 1.0
	for (hi-lo)/step > 10 {
		switch {
		case step < 2:
			step = 2
		case step < 5:
			step = 5
		default:
			step *= 2
		}
	}
	var ticks []plot.Tick
	for v := lo; v <= hi; v++ {
		t := plot.Tick{Value: v}
		if math.Mod(v, step) == 0 {
			t.Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// Number converts a history value to float64: any Go integer or float type,
// and the W&B literals "NaN", "Infinity" and "-Infinity" as strings. Other
// values (nil, strings, maps) report false.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := x.Float64()
		return f, err == nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
