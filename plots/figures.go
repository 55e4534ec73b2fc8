package plots

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Paper sizes of the report's figures: the width of one column and of both
// columns of a two-column paper (ACL, IEEE and ACM templates all fit).
const (
	OneColumn = 3.3 * vg.Inch
	TwoColumn = 7 * vg.Inch
)

// Font sizes of the report's figures at print size. 7 pt is the smallest
// size journals accept for figure text.
const (
	FontTick   = 7
	FontLabel  = 8
	FontTitle  = 8
	FontLegend = 7
	FontCell   = 7
)

// DefaultDPI is the resolution of the PNG written next to each figure's PDF
// and SVG: print quality at the figure's paper size.
const DefaultDPI = 300

// Formats are the file extensions every report figure is written in.
var Formats = []string{"pdf", "svg", "png"}

// OkabeIto is the colour-blind-safe palette of Okabe and Ito (2008), in the
// order the figures use it: blue, vermillion, bluish green, reddish purple,
// orange, sky blue, black, yellow (last: it is faint on white).
var OkabeIto = []color.NRGBA{
	{R: 0x00, G: 0x72, B: 0xB2, A: 0xFF},
	{R: 0xD5, G: 0x5E, B: 0x00, A: 0xFF},
	{R: 0x00, G: 0x9E, B: 0x73, A: 0xFF},
	{R: 0xCC, G: 0x79, B: 0xA7, A: 0xFF},
	{R: 0xE6, G: 0x9F, B: 0x00, A: 0xFF},
	{R: 0x56, G: 0xB4, B: 0xE9, A: 0xFF},
	{R: 0x00, G: 0x00, B: 0x00, A: 0xFF},
	{R: 0xF0, G: 0xE4, B: 0x42, A: 0xFF},
}

// knownKeys fixes the colour of each fusion (and head) so a fusion has the
// same colour in every figure of a report and across reports.
var knownKeys = map[string]int{
	"concat": 0, "late": 1, "align": 2, "cross": 3, "gmu": 4, "image_only": 5, "text_only": 6,
	"double_softmax": 3, "softmax_ce": 2, "bce": 5,
	"train": 0, "val": 1, "val/f1_macro": 0, "val/acc": 4, "val/auroc": 2, "val/loss": 1,
}

// dashes give each series a second cue besides colour, for grey-scale print.
var dashes = [][]vg.Length{
	nil,
	{vg.Points(4), vg.Points(2)},
	{vg.Points(1), vg.Points(1.5)},
	{vg.Points(5), vg.Points(1.5), vg.Points(1), vg.Points(1.5)},
	{vg.Points(2.5), vg.Points(2.5)},
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1), vg.Points(3)},
	{vg.Points(3), vg.Points(1), vg.Points(1), vg.Points(1), vg.Points(1), vg.Points(1)},
}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.BoxGlyph{}, draw.RingGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

// Style is how one series is drawn: colour, dash pattern and marker.
type Style struct {
	Color  color.NRGBA
	Dashes []vg.Length
	Glyph  draw.GlyphDrawer
}

// StyleFor returns the style of the series named key: fixed for the known
// fusion and head names, otherwise chosen by a hash of the name (stable
// across runs, not across renames).
func StyleFor(key string) Style {
	i, ok := knownKeys[key]
	if !ok {
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		i = int(h.Sum32() % uint32(len(OkabeIto)-1))
	}
	return Style{Color: OkabeIto[i], Dashes: dashes[i], Glyph: glyphs[i]}
}

// sans is the font of every report figure: a sans serif reads better than
// gonum's default serif at small sizes.
var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

func sansAt(pt float64) font.Font { return font.From(sans, vg.Length(pt)) }

// newPanel returns a plot with the report's theme and a light grid.
func newPanel(title, xlabel, ylabel string) *plot.Plot {
	p := themed(title, xlabel, ylabel)
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 230}
	grid.Horizontal.Color = color.Gray{Y: 230}
	grid.Vertical.Width = vg.Points(0.4)
	grid.Horizontal.Width = vg.Points(0.4)
	p.Add(grid)
	return p
}

// themed returns a plot with the report's theme: sans fonts at print sizes,
// thin axes and short ticks.
func themed(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sansAt(FontTitle)
	p.Title.Padding = vg.Points(3)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sansAt(FontLabel)
		a.Tick.Label.Font = sansAt(FontTick)
		a.Tick.Length = vg.Points(3)
		a.Padding = vg.Points(2)
		a.LineStyle.Width = vg.Points(0.5)
		a.Tick.LineStyle.Width = vg.Points(0.5)
		a.Label.Padding = vg.Points(2)
	}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	p.Legend.TextStyle.Font = sansAt(FontLegend)
	return p
}

// LegendEntry is one entry of a figure's legend: a label and the thumbnails
// drawn before it (a line, its markers, a band).
type LegendEntry struct {
	Label  string
	Thumbs []plot.Thumbnailer
}

// Figure is one figure of a report: panels side by side, each a gonum plot,
// and one legend for all of them drawn below the panels, outside the data
// area, in as many columns as the width allows.
type Figure struct {
	// Name is the file name of the figure without extension.
	Name string
	// Width and Height are the figure's size at print.
	Width, Height vg.Length
	// Panels are drawn left to right with aligned data areas.
	Panels []*plot.Plot
	// Legend entries, drawn below the panels.
	Legend []LegendEntry
	// Caption describes the figure for the report (not drawn).
	Caption string
}

const (
	legendThumb = 16 // thumbnail width, points
	legendGap   = 3  // gap between thumbnail and label, points
	legendColSp = 8  // space between legend columns, points
	legendPad   = 4  // space above the legend, points
)

// legendLayout returns the column widths of the legend (entries fill rows
// left to right) for a figure of width w: as many columns as fit, each as
// wide as its widest entry.
func (f *Figure) legendLayout(w vg.Length) (colW []vg.Length, rows int) {
	if len(f.Legend) == 0 {
		return nil, 0
	}
	sty := text.Style{Font: sansAt(FontLegend), Handler: plot.DefaultTextHandler}
	widths := make([]vg.Length, len(f.Legend))
	for i, e := range f.Legend {
		widths[i] = vg.Points(legendThumb+legendGap) + sty.Width(e.Label)
	}
	layout := func(cols int) ([]vg.Length, vg.Length) {
		cw := make([]vg.Length, cols)
		for i, wi := range widths {
			cw[i%cols] = max(cw[i%cols], wi)
		}
		total := vg.Length(cols-1) * vg.Points(legendColSp)
		for _, x := range cw {
			total += x
		}
		return cw, total
	}
	n := len(f.Legend)
	cols := n
	for ; cols > 1; cols-- {
		if _, total := layout(cols); total <= w {
			break
		}
	}
	// Balance the rows: the fewest columns that need no more rows.
	rows = (n + cols - 1) / cols
	for cols > 1 && (n+cols-2)/(cols-1) == rows {
		cols--
	}
	cw, _ := layout(cols)
	return cw, rows
}

func legendRowHeight() vg.Length {
	return text.Style{Font: sansAt(FontLegend), Handler: plot.DefaultTextHandler}.FontExtents().Height * 1.25
}

// Draw draws the figure onto c.
func (f *Figure) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	w := c.Max.X - c.Min.X
	colW, rows := f.legendLayout(w - vg.Points(4))
	cols := len(colW)
	legendH := vg.Length(0)
	if rows > 0 {
		legendH = vg.Length(rows)*legendRowHeight() + vg.Points(legendPad)
	}
	area := c
	area.Min.Y += legendH
	// A little margin so no stroke touches the page edge.
	area = draw.Crop(area, vg.Points(2), -vg.Points(4), vg.Points(1), -vg.Points(2))
	if len(f.Panels) > 0 {
		tiles := draw.Tiles{Rows: 1, Cols: len(f.Panels), PadX: vg.Points(10)}
		cans := plot.Align([][]*plot.Plot{f.Panels}, tiles, area)
		for i, p := range f.Panels {
			p.Draw(cans[0][i])
		}
	}
	if rows == 0 {
		return
	}
	sty := text.Style{Color: color.Black, Font: sansAt(FontLegend), Handler: plot.DefaultTextHandler,
		XAlign: draw.XLeft, YAlign: draw.YCenter}
	colX := make([]vg.Length, cols)
	var total vg.Length
	for i, cw := range colW {
		if i > 0 {
			total += vg.Points(legendColSp)
		}
		colX[i] = total
		total += cw
	}
	x0 := c.Min.X + (w-total)/2
	rh := legendRowHeight()
	top := c.Min.Y + vg.Length(rows)*rh
	for i, e := range f.Legend {
		col, row := i%cols, i/cols
		x := x0 + colX[col]
		yc := top - (vg.Length(row)+0.5)*rh
		th := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: yc - rh*0.35},
			Max: vg.Point{X: x + vg.Points(legendThumb), Y: yc + rh*0.35},
		}}
		for _, t := range e.Thumbs {
			t.Thumbnail(&th)
		}
		c.FillText(sty, vg.Point{X: x + vg.Points(legendThumb+legendGap), Y: yc}, e.Label)
	}
}

// WriteTo renders the figure in format ("pdf", "svg" or "png"; dpi applies
// to png only, DefaultDPI when 0) to w. PDFs embed their fonts, as
// publishers require; SVGs name them (Liberation Sans, then any sans-serif),
// which keeps them small.
func (f *Figure) WriteTo(w io.Writer, format string, dpi int) error {
	var cw vg.CanvasWriterTo
	switch format {
	case "pdf":
		c := vgpdf.New(f.Width, f.Height)
		c.EmbedFonts(true)
		cw = c
	case "svg":
		cw = vgsvg.New(f.Width, f.Height)
	case "png":
		if dpi <= 0 {
			dpi = DefaultDPI
		}
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(dpi))}
	default:
		return fmt.Errorf("plots: figure %s: unknown format %q (want pdf, svg or png)", f.Name, format)
	}
	f.Draw(draw.New(cw))
	if format == "svg" {
		// Name fallbacks after Liberation Sans: Arial has the same metrics,
		// so text measured for Liberation fits where it is not installed.
		var buf bytes.Buffer
		if _, err := cw.WriteTo(&buf); err != nil {
			return fmt.Errorf("plots: render %s.%s: %w", f.Name, format, err)
		}
		b := bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"), []byte(svgFontFamily))
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("plots: render %s.%s: %w", f.Name, format, err)
		}
		return nil
	}
	if _, err := cw.WriteTo(w); err != nil {
		return fmt.Errorf("plots: render %s.%s: %w", f.Name, format, err)
	}
	return nil
}

// svgFontFamily is the font of SVG text: Liberation Sans, then the fonts
// with its metrics, then any sans serif.
const svgFontFamily = "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"

// Save writes the figure into dir as Name.pdf, Name.svg and Name.png (at
// dpi, DefaultDPI when 0) and returns the paths written. Each file is
// written to a temporary name and renamed, so a reader never sees half a
// figure.
func (f *Figure) Save(dir string, dpi int) ([]string, error) {
	if f.Name == "" {
		return nil, fmt.Errorf("plots: figure has no name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: create %s: %w", dir, err)
	}
	var paths []string
	for _, ext := range Formats {
		path := filepath.Join(dir, f.Name+"."+ext)
		if err := writeFile(path, func(w io.Writer) error { return f.WriteTo(w, ext, dpi) }); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func writeFile(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("plots: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(fh)
	if err := write(bw); err != nil {
		_ = fh.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		_ = fh.Close()
		return fmt.Errorf("plots: write %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("plots: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("plots: write %s: %w", path, err)
	}
	return nil
}

// lineThumb and friends build legend thumbnails for a style.
func styledLine(xys plotter.XYs, s Style, width float64) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color = s.Color
	l.Dashes = s.Dashes
	l.Width = vg.Points(width)
	return l, nil
}

func styledPoints(xys plotter.XYs, s Style, radius float64) (*plotter.Scatter, error) {
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	sc.Color = s.Color
	sc.Shape = s.Glyph
	sc.Radius = vg.Points(radius)
	return sc, nil
}

// faint returns c with alpha a (0–255).
func faint(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

// niceRange pads [lo, hi] by frac of its span on both sides; a zero span
// becomes ±pad around the value.
func niceRange(lo, hi, frac, pad float64) (float64, float64) {
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 0, 1
	}
	span := hi - lo
	if span <= 0 {
		return lo - pad, hi + pad
	}
	return lo - frac*span, hi + frac*span
}

// niceTicks labels about five round values (steps of 1, 2, 2.5 or 5 times
// a power of ten) with an unlabelled minor tick between each pair; gonum's
// default often labels only three.
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	span := hi - lo
	mag := math.Pow(10, math.Floor(math.Log10(span)))
	step := mag
	for _, m := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10} {
		step = m * mag
		if span/step <= 6 {
			break
		}
	}
	prec := 0 // the fewest decimals that write step exactly
	for ; prec < 10; prec++ {
		v := step * math.Pow(10, float64(prec))
		if math.Abs(v-math.Round(v)) < 1e-6*v {
			break
		}
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for v := first - step/2; v <= hi+1e-9*span; v += step / 2 {
		if v < lo-1e-9*span {
			continue
		}
		k := math.Round(v / (step / 2))
		t := plot.Tick{Value: k * step / 2}
		if math.Mod(k, 2) == 0 {
			t.Label = strconv.FormatFloat(t.Value, 'f', prec, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}
