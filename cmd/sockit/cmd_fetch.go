package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sockit/sockit/client"
)

func init() { extraCommands = append(extraCommands, newFetchCommand) }

// fetchOptions are sockit fetch's flags.
type fetchOptions struct {
	input       string
	concurrency int
	timeout     time.Duration
	headers     []string
	json        bool
	tls         clientTLSFlags
}

func newFetchCommand(g *globals) *cobra.Command {
	var opts fetchOptions
	cmd := &cobra.Command{
		Use:   "fetch URL... | fetch -i FILE",
		Short: "GET many URLs concurrently and report each one's status, size and time",
		Long: `fetch GETs every URL, at most -c at once (-c 1 is the sequential version of
seed 001's get_url), then prints a table (url, status, bytes, time) and the
totals: wall time, the sum of the request times (what one after the other
would have cost), the speed-up (sum / wall), requests per second, and the
failures by kind (refused, timeout, http-status, other).

{N..M} in a URL expands to N, N+1, ..., M ({01..20} zero-pads). URLs also come
from a file with -i FILE (one per line; blank lines and # comments skipped),
or from stdin with -i -. Connections to one host are kept alive and reused.
A progress bar is drawn on stderr when it is a terminal.

A failing URL never stops the others; any failure (no response, a timeout,
a 4xx or 5xx status) makes the exit status 1.`,
		Example: `  # seed 001's 20 URLs at once, against sockit serve http --delay 500ms
  sockit fetch -c 20 'http://127.0.0.1:7788/hello/{1..20}'

  # the same one after the other
  sockit fetch -c 1 'http://127.0.0.1:7788/hello/{1..20}'

  # URLs from a file, a 2s limit per request, a JSON report
  sockit fetch -i urls.txt --timeout 2s --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFetch(cmd.Context(), g, args, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.input, "input", "i", "", "read URLs from this file, one per line (- for stdin)")
	f.IntVarP(&opts.concurrency, "concurrency", "c", client.DefaultFetchConcurrency, "requests at once (1: one after the other)")
	f.DurationVar(&opts.timeout, "timeout", 30*time.Second, "limit for each request, from connecting to its last body byte (0: none)")
	f.StringArrayVarP(&opts.headers, "header", "H", nil, "add a request header 'Name: value' to every request (repeatable)")
	f.BoolVar(&opts.json, "json", false, `print the report as one JSON document ("schema": "sockit.fetch/v1")`)
	opts.tls.register(f)
	return cmd
}

func runFetch(ctx context.Context, g *globals, args []string, opts fetchOptions) error {
	if opts.concurrency < 1 {
		return usagef("-c must be at least 1, not %d", opts.concurrency)
	}
	if opts.timeout < 0 {
		return usagef("--timeout cannot be negative")
	}
	patterns := append([]string(nil), args...)
	if opts.input != "" {
		lines, err := readURLLines(g, opts.input)
		if err != nil {
			return err
		}
		patterns = append(patterns, lines...)
	}
	if len(patterns) == 0 {
		return usagef("no URLs: give them as arguments or with -i FILE")
	}
	// The bounds hold for all the patterns together, not each alone.
	var urls []string
	total := 0
	for _, p := range patterns {
		exp, err := client.ExpandRanges(p)
		if err != nil {
			return usageError{err}
		}
		if len(urls)+len(exp) > client.MaxExpandedURLs {
			return usagef("more than %d URLs", client.MaxExpandedURLs)
		}
		for _, u := range exp {
			if total += len(u); total > client.MaxExpandedBytes {
				return usagef("more than %d MiB of URLs", client.MaxExpandedBytes>>20)
			}
			urls = append(urls, normalizeURL(u, false))
		}
	}
	hdr, err := parseHeaders(opts.headers)
	if err != nil {
		return err
	}
	tlsCfg, err := opts.tls.config("")
	if err != nil {
		return err
	}
	cfg := client.FetchConfig{
		Concurrency: opts.concurrency,
		Timeout:     opts.timeout,
		Header:      hdr,
		TLS:         tlsCfg,
	}
	if bar := newFetchBar(g, len(urls)); bar != nil {
		cfg.OnResult = func(client.FetchResult) { _ = bar.Add(1) }
		defer func() { _ = bar.Finish() }()
	}
	g.logger.Debug("fetch", "urls", len(urls), "concurrency", opts.concurrency, "timeout", opts.timeout)
	// Fetch fails only when ctx ends first; the report still holds every
	// URL, the ones cut short as failed, and is printed before the 130.
	rep, _ := client.Fetch(ctx, urls, cfg)
	if opts.json {
		err = writeFetchJSON(g.stdout, rep, opts.timeout)
	} else {
		err = writeFetchTable(g.stdout, rep)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		// What finished is reported; the rest was cut short (130, not 1).
		return errInterrupted
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("%d of %d URLs failed", n, len(rep.Results))
	}
	return nil
}

// readURLLines reads URL lines from a file or stdin ("-"), skipping blank
// lines and # comments.
func readURLLines(g *globals, name string) ([]string, error) {
	var r io.Reader
	if name == "-" {
		if g.stdin == nil {
			return nil, nil
		}
		r = g.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("-i: %v", err)
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading URLs from %s: %w", name, err)
	}
	return out, nil
}

// newFetchBar returns a progress bar on stderr when stderr is a terminal,
// else nil.
func newFetchBar(g *globals, total int) *progressbar.ProgressBar {
	f, ok := g.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("fetch"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(50*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// writeFetchTable prints the per-URL table and the totals.
func writeFetchTable(w io.Writer, rep *client.FetchReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	failed := rep.Failed() > 0
	if failed {
		fmt.Fprintln(tw, "URL\tSTATUS\tBYTES\tTIME\tERROR")
	} else {
		fmt.Fprintln(tw, "URL\tSTATUS\tBYTES\tTIME")
	}
	for _, r := range rep.Results {
		status := strconv.Itoa(r.Status)
		if r.Status == 0 {
			status = string(r.Kind)
		}
		line := fmt.Sprintf("%s\t%s\t%d\t%s", r.URL, status, r.Bytes, fmtDuration(r.Duration))
		if failed {
			e := ""
			if r.Err != nil {
				e = oneLine(r.Err.Error())
			}
			line += "\t" + e
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ok := len(rep.Results) - rep.Failed()
	fmt.Fprintf(w, "\n%d requests, %d ok, %d failed, concurrency %d\n", len(rep.Results), ok, rep.Failed(), rep.Concurrency)
	fmt.Fprintf(w, "wall %s  sum %s  speed-up %.1fx  %.1f requests/s\n",
		fmtDuration(rep.Wall), fmtDuration(rep.Sum), rep.Speedup(), rep.RequestsPerSecond())
	if failed {
		var parts []string
		fails := rep.Failures()
		for _, k := range client.FailureKinds {
			if fails[k] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, fails[k]))
			}
		}
		fmt.Fprintf(w, "failures: %s\n", strings.Join(parts, ", "))
	}
	return nil
}

// fetchJSON is the document of fetch --json (docs/json.md).
type fetchJSON struct {
	Schema         string            `json:"schema"`
	Concurrency    int               `json:"concurrency"`
	TimeoutSeconds float64           `json:"timeout_seconds"`
	Results        []fetchJSONResult `json:"results"`
	Totals         fetchJSONTotals   `json:"totals"`
}

type fetchJSONResult struct {
	URL         string  `json:"url"`
	Status      int     `json:"status"`
	Bytes       int64   `json:"bytes"`
	TimeSeconds float64 `json:"time_seconds"`
	OK          bool    `json:"ok"`
	Failure     string  `json:"failure,omitempty"`
	Error       string  `json:"error,omitempty"`
}

type fetchJSONTotals struct {
	Requests          int            `json:"requests"`
	OK                int            `json:"ok"`
	Failed            int            `json:"failed"`
	WallSeconds       float64        `json:"wall_seconds"`
	SumSeconds        float64        `json:"sum_seconds"`
	Speedup           float64        `json:"speedup"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	Bytes             int64          `json:"bytes"`
	Failures          map[string]int `json:"failures"`
}

func writeFetchJSON(w io.Writer, rep *client.FetchReport, timeout time.Duration) error {
	doc := fetchJSON{
		Schema:         "sockit.fetch/v1",
		Concurrency:    rep.Concurrency,
		TimeoutSeconds: timeout.Seconds(),
		Results:        make([]fetchJSONResult, 0, len(rep.Results)),
		Totals: fetchJSONTotals{
			Requests:          len(rep.Results),
			Failed:            rep.Failed(),
			WallSeconds:       rep.Wall.Seconds(),
			SumSeconds:        rep.Sum.Seconds(),
			Speedup:           rep.Speedup(),
			RequestsPerSecond: rep.RequestsPerSecond(),
			Failures:          map[string]int{},
		},
	}
	doc.Totals.OK = doc.Totals.Requests - doc.Totals.Failed
	for k, n := range rep.Failures() {
		doc.Totals.Failures[string(k)] = n
	}
	for _, r := range rep.Results {
		jr := fetchJSONResult{
			URL:         r.URL,
			Status:      r.Status,
			Bytes:       r.Bytes,
			TimeSeconds: r.Duration.Seconds(),
			OK:          r.Kind == client.FailNone,
			Failure:     string(r.Kind),
		}
		if r.Err != nil {
			jr.Error = oneLine(r.Err.Error())
		}
		doc.Totals.Bytes += r.Bytes
		doc.Results = append(doc.Results, jr)
	}
	return writeJSON(w, doc)
}

// fmtDuration prints a duration with about four significant digits.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
