package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mami-lab/mami/experiments"
)

// viridis anchors (matplotlib's viridis sampled at nine points): a
// sequential colour map readable with every common colour-vision
// deficiency and in grey scale.
var viridis = []color.NRGBA{
	{0x44, 0x01, 0x54, 0xFF}, {0x47, 0x2c, 0x7a, 0xFF}, {0x3b, 0x52, 0x8b, 0xFF},
	{0x2c, 0x72, 0x8e, 0xFF}, {0x21, 0x91, 0x8c, 0xFF}, {0x28, 0xae, 0x80, 0xFF},
	{0x5e, 0xc9, 0x62, 0xFF}, {0xad, 0xdc, 0x30, 0xFF}, {0xfd, 0xe7, 0x25, 0xFF},
}

// Viridis maps t in [0, 1] to the viridis colour map (clamped).
func Viridis(t float64) color.NRGBA {
	if math.IsNaN(t) {
		return color.NRGBA{R: 0xDD, G: 0xDD, B: 0xDD, A: 0xFF}
	}
	t = math.Max(0, math.Min(1, t))
	pos := t * float64(len(viridis)-1)
	i := int(pos)
	if i >= len(viridis)-1 {
		return viridis[len(viridis)-1]
	}
	f := pos - float64(i)
	a, b := viridis[i], viridis[i+1]
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
	return color.NRGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 0xFF}
}

// textOn returns black or white, whichever reads better on background c.
func textOn(c color.NRGBA) color.Color {
	lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
	if lum > 140 {
		return color.Black
	}
	return color.White
}

// cells is a plotter of a grid of annotated cells; row 0 is drawn at the top.
type cells struct {
	rows, cols int
	fill       func(r, c int) color.NRGBA
	label      func(r, c int) string
}

func (g cells) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(g.cols) - 0.5, -0.5, float64(g.rows) - 0.5
}

func (g cells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := text.Style{Font: sansAt(FontCell), XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler}
	for r := 0; r < g.rows; r++ {
		y := float64(g.rows - 1 - r)
		for col := 0; col < g.cols; col++ {
			x := float64(col)
			x0, x1 := trX(x-0.5), trX(x+0.5)
			y0, y1 := trY(y-0.5), trY(y+0.5)
			fill := g.fill(r, col)
			c.FillPolygon(fill, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
			c.StrokeLines(draw.LineStyle{Color: color.White, Width: vg.Points(1)},
				[]vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}, {X: x0, Y: y0}})
			if s := g.label(r, col); s != "" {
				sty.Color = textOn(fill)
				c.FillText(sty, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, s)
			}
		}
	}
}

// categorical sets ticks at 0..n-1 labelled by names on axis a (top to
// bottom when reversed) and hides tick marks.
func categorical(a *plot.Axis, names []string, reversed bool) {
	ticks := make([]plot.Tick, len(names))
	for i, n := range names {
		v := float64(i)
		if reversed {
			v = float64(len(names) - 1 - i)
		}
		ticks[i] = plot.Tick{Value: v, Label: n}
	}
	a.Tick.Marker = plot.ConstantTicks(ticks)
	a.Tick.Length = 0
	a.LineStyle.Width = 0
	a.Padding = vg.Points(1)
}

// Heatmap is a rows × columns table of values drawn as coloured, annotated
// cells; NaN cells (not run) are grey and marked "–".
type Heatmap struct {
	Title, XLabel, YLabel string
	Rows, Cols            []string
	// Values[r][c]; NaN for a missing cell.
	Values [][]float64
	// Format writes a cell value; three decimals when nil.
	Format func(float64) string
}

// NewHeatmap builds the heatmap figure. The colour scale runs from the
// smallest to the largest value present, so differences between cells are
// visible even when all values are close; the numbers in the cells carry
// the scale.
func NewHeatmap(name string, width, height vg.Length, h Heatmap) (*Figure, error) {
	if len(h.Rows) == 0 || len(h.Cols) == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	if len(h.Values) != len(h.Rows) {
		return nil, fmt.Errorf("plots: figure %s: %d value rows for %d row names", name, len(h.Values), len(h.Rows))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for r, row := range h.Values {
		if len(row) != len(h.Cols) {
			return nil, fmt.Errorf("plots: figure %s: row %d has %d values for %d columns", name, r, len(row), len(h.Cols))
		}
		for _, v := range row {
			if finite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 0) {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	format := h.Format
	if format == nil {
		format = func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	}
	p := themed(h.Title, h.XLabel, h.YLabel)
	p.Add(cells{
		rows: len(h.Rows), cols: len(h.Cols),
		fill: func(r, c int) color.NRGBA {
			v := h.Values[r][c]
			if !finite(v) {
				return Viridis(math.NaN())
			}
			if hi == lo {
				return Viridis(0.5)
			}
			return Viridis((v - lo) / (hi - lo))
		},
		label: func(r, c int) string {
			v := h.Values[r][c]
			if !finite(v) {
				return "–"
			}
			return format(v)
		},
	})
	categorical(&p.X, h.Cols, false)
	categorical(&p.Y, h.Rows, true)
	return &Figure{Name: name, Width: width, Height: height, Panels: []*plot.Plot{p}}, nil
}

// ConfusionClasses are the class names of the MAMI Sub-task A confusion
// matrix, class 0 first.
var ConfusionClasses = []string{"not misogynous", "misogynous"}

// NewConfusion draws a binary confusion matrix: true class down, predicted
// class across, each cell with its count and its share of the true class
// (the row), coloured by that share.
func NewConfusion(name, title string, width, height vg.Length, c experiments.Confusion) (*Figure, error) {
	if c.N() == 0 {
		return nil, fmt.Errorf("plots: figure %s: %w", name, ErrEmpty)
	}
	// counts[true][pred]
	counts := [2][2]int{{c.TN, c.FP}, {c.FN, c.TP}}
	share := func(r, col int) float64 {
		n := counts[r][0] + counts[r][1]
		if n == 0 {
			return math.NaN()
		}
		return float64(counts[r][col]) / float64(n)
	}
	p := themed(title, "predicted class", "true class")
	p.Add(cells{
		rows: 2, cols: 2,
		fill: func(r, col int) color.NRGBA { return Viridis(share(r, col)) },
		label: func(r, col int) string {
			s := share(r, col)
			if math.IsNaN(s) {
				return strconv.Itoa(counts[r][col])
			}
			return fmt.Sprintf("%d\n(%.1f%%)", counts[r][col], 100*s)
		},
	})
	categorical(&p.X, ConfusionClasses, false)
	categorical(&p.Y, []string{"not\nmisogynous", "misogynous"}, true)
	return &Figure{Name: name, Width: width, Height: height, Panels: []*plot.Plot{p}}, nil
}
