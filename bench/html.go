package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteHTML writes a self-contained report: the summary, a latency
// percentile plot and a throughput-over-time plot as inline SVG (no script,
// no external resource, so it works offline), and the JSON document.
func (res *Result) WriteHTML(w io.Writer) error {
	var summary bytes.Buffer
	if err := res.WriteText(&summary); err != nil {
		return err
	}
	lat, err := res.latencySVG()
	if err != nil {
		return fmt.Errorf("latency plot: %w", err)
	}
	tput, err := res.throughputSVG()
	if err != nil {
		return fmt.Errorf("throughput plot: %w", err)
	}
	doc, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return reportPage.Execute(w, map[string]any{
		"Title":      fmt.Sprintf("sockit bench %s %s", res.Mode, res.Endpoint),
		"Summary":    summary.String(),
		"Latency":    template.HTML(lat), // SVG made by gonum/plot from numbers only
		"Throughput": template.HTML(tput),
		"JSON":       string(doc),
	})
}

var reportPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{background:#f4f4f4;padding:1em;overflow:auto}figure{margin:1em 0}svg{max-width:100%;height:auto}</style>
</head><body>
<h1>{{.Title}}</h1>
<pre>{{.Summary}}</pre>
<h2>Latency by percentile</h2>
<figure>{{if .Latency}}{{.Latency}}{{else}}<p>This mode measures no latency.</p>{{end}}</figure>
<h2>Throughput over time</h2>
<figure>{{if .Throughput}}{{.Throughput}}{{else}}<p>The window was too short for a timeline.</p>{{end}}</figure>
<details><summary>JSON (sockit.bench/v1)</summary><pre>{{.JSON}}</pre></details>
</body></html>
`))

// nines maps a percentile to the x of the percentile plot: 90 → 1,
// 99 → 2, 99.9 → 3 (HdrHistogram's usual axis).
func nines(p float64) float64 {
	if p >= 100 {
		return 6
	}
	return math.Min(-math.Log10(1-p/100), 6)
}

func (res *Result) latencySVG() (string, error) {
	if len(res.Percentiles) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = "latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	pts := make(plotter.XYs, 0, len(res.Percentiles))
	top := 0.0
	for _, pp := range res.Percentiles {
		x := nines(pp.Percentile)
		pts = append(pts, plotter.XY{X: x, Y: pp.Micros / 1e3})
		top = math.Max(top, x)
	}
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return "", err
	}
	p.Add(line, points, plotter.NewGrid())
	var ticks []plot.Tick
	for i, label := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "max"} {
		if float64(i) <= math.Ceil(top) {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: label})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.Y.Min = 0, 0
	return svgOf(p)
}

func (res *Result) throughputSVG() (string, error) {
	if len(res.Timeline) < 2 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = "throughput"
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "messages/s"
	if res.Mode == Idle {
		p.Title.Text, p.Y.Label.Text = "connections held", "connections"
	}
	pts := make(plotter.XYs, 0, len(res.Timeline))
	for _, s := range res.Timeline {
		y := s.MessagesPerSec
		if res.Mode == Idle {
			y = float64(s.Conns)
		}
		pts = append(pts, plotter.XY{X: s.T, Y: y})
	}
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return "", err
	}
	p.Add(line, points, plotter.NewGrid())
	p.Y.Min = 0
	return svgOf(p)
}

func svgOf(p *plot.Plot) (string, error) {
	wt, err := p.WriterTo(7*vg.Inch, 4*vg.Inch, "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	out := b.Bytes()
	// Drop the XML prolog: the SVG is inlined in HTML.
	if i := bytes.Index(out, []byte("<svg")); i > 0 {
		out = out[i:]
	}
	return string(out), nil
}
