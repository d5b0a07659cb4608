package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
)

func init() { extraCommands = append(extraCommands, newDownloadCommand) }

// downloadOptions are sockit download's flags.
type downloadOptions struct {
	output      string
	list        string
	listSet     bool
	recursive   string
	concurrency int
	json        bool
	sha256      string
	timeout     time.Duration
	tls         clientTLSFlags
}

func newDownloadCommand(g *globals) *cobra.Command {
	var opts downloadOptions
	cmd := &cobra.Command{
		Use:   "download ENDPOINT NAME | ENDPOINT --list [DIR] | ENDPOINT -r DIR | URL",
		Short: "download a file from sockit serve files (or an http/https URL): resumable, verified",
		Long: `download fetches NAME from a files server (sockit serve files) into PATH
(-o; default: NAME's last element in the current directory). The bytes go
into PATH.part first; a PATH.part left by an earlier run is resumed from its
size (GET NAME OFFSET). The SHA-256 the server announces is checked over the
whole file, the resumed part included, and only a whole, verified file is
renamed to PATH. On a checksum mismatch PATH.part is removed and nothing is
left under PATH; on any other failure (the connection cut, the server gone,
SIGINT) PATH.part is kept for the next run.

--list [DIR] prints the server's listing; -r DIR downloads every file of DIR
(not recursive: LIST's files), -c N at once, into the directory -o (default
the current one).

With an http:// or https:// URL it downloads with net/http: a PATH.part is
resumed with Range and If-Range (the ETag or Last-Modified it began with), so
a file that changed on the server is sent whole and begun again, never
appended to; a server that ignores Range (200, not 206) restarts the file.
--sha256 HEX checks the result (for the files protocol it must match the
server's).

A progress bar shows on a terminal (nothing on a pipe). --json prints a
sockit.download/v1 document. Exit status: 0 when every file came whole and
verified, 1 when one did not, 2 for a usage error, 130 when interrupted.`,
		Example: `  # seed 002's downloader: the file of that name, into ./report.pdf
  sockit download tcp://127.0.0.1:9000 report.pdf

  # run it again after a cut: it resumes from report.pdf.part
  sockit download tcp://127.0.0.1:9000 report.pdf -o /tmp/report.pdf

  # what the server has, and all of one directory, 4 at once
  sockit download tcp://127.0.0.1:9000 --list
  sockit download tcp://127.0.0.1:9000 -r photos -c 4 -o ./photos

  # over TLS, and from sockit serve http --root
  sockit download --pin sha256:3f1c... tls://127.0.0.1:9443 big.iso
  sockit download http://127.0.0.1:8080/files/big.iso --sha256 9f86d0...`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.listSet = cmd.Flags().Changed("list")
			return runDownload(cmd.Context(), g, args, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "where the file goes (with -r: the directory); default: NAME's last element here")
	f.StringVar(&opts.list, "list", ".", "print the files of DIR on the server (LIST DIR) instead of downloading")
	f.Lookup("list").NoOptDefVal = "."
	f.StringVarP(&opts.recursive, "recursive", "r", "", "download every file of directory DIR on the server")
	f.IntVarP(&opts.concurrency, "concurrency", "c", 4, "-r: how many files at once")
	f.BoolVar(&opts.json, "json", false, "print the result as one sockit.download/v1 JSON document")
	f.StringVar(&opts.sha256, "sha256", "", "the SHA-256 (hex) the file must have")
	f.DurationVar(&opts.timeout, "timeout", client.DefaultDownloadTimeout, "how long connecting, and each wait for bytes, may take")
	opts.tls.register(f)
	return cmd
}

// runDownload checks the arguments and runs the download(s).
func runDownload(ctx context.Context, g *globals, args []string, opts downloadOptions) error {
	if opts.timeout <= 0 {
		return usagef("--timeout must be positive, not %v", opts.timeout)
	}
	if opts.concurrency < 1 {
		return usagef("-c must be at least 1, not %d", opts.concurrency)
	}
	if opts.sha256 != "" && (len(opts.sha256) != 64 || strings.Trim(strings.ToLower(opts.sha256), "0123456789abcdef") != "") {
		return usagef("--sha256 %q: want 64 hex digits", opts.sha256)
	}
	base := client.DownloadConfig{Timeout: opts.timeout, SHA256: opts.sha256, Output: opts.output}
	if u := args[0]; strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		if len(args) > 1 || opts.listSet || opts.recursive != "" {
			return usagef("a URL downloads that one file: no NAME, --list or -r")
		}
		if opts.tls.used() || strings.HasPrefix(u, "https://") {
			var err error
			if base.TLS, err = opts.tls.config(""); err != nil {
				return err
			}
		}
		base.URL = u
		return downloadAll(ctx, g, opts, []client.DownloadConfig{base})
	}
	ep, err := endpoint.Parse(args[0])
	if err != nil {
		return usageError{err}
	}
	if ep.IsPacket() || ep.Scheme == "unixpacket" || ep.Scheme == "fd" {
		return usagef("download needs a stream endpoint (tcp, tls, unix), not %s", ep.Scheme)
	}
	base.Endpoint = ep
	base.Dialer = endpoint.Dialer{Timeout: opts.timeout}
	if ep.IsTLS() {
		if base.Dialer.TLS, err = opts.tls.config(""); err != nil {
			return err
		}
	} else if opts.tls.used() {
		return usagef("TLS options apply to tls:// endpoints, not %s", ep.Scheme)
	}
	switch {
	case opts.listSet:
		if len(args) == 2 && opts.list == "." {
			opts.list, args = args[1], args[:1] // --list DIR, as written
		}
		if len(args) > 1 || opts.recursive != "" {
			return usagef("--list takes no NAME and no -r")
		}
		entries, err := client.ListFiles(ctx, base, opts.list)
		if err != nil {
			return err
		}
		for _, e := range entries {
			fmt.Fprintf(g.stdout, "%d %s\n", e.Size, e.Name)
		}
		return nil
	case opts.recursive != "":
		if len(args) > 1 {
			return usagef("-r %s takes no NAME", opts.recursive)
		}
		entries, err := client.ListFiles(ctx, base, opts.recursive)
		if err != nil {
			return err
		}
		dir := opts.output
		if dir == "" {
			dir = "."
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var cfgs []client.DownloadConfig
		for _, e := range entries {
			// The names come from the server: only their last element is
			// used, and one that names no file here (".", "..") is refused.
			out := client.DefaultOutput(e.Name, "")
			if out == "" {
				return fmt.Errorf("%w: LIST %s gave the name %q, which names no file here", client.ErrBadAnswer, opts.recursive, e.Name)
			}
			c := base
			c.Name, c.Output = e.Name, filepath.Join(dir, out)
			cfgs = append(cfgs, c)
		}
		return downloadAll(ctx, g, opts, cfgs)
	}
	if len(args) < 2 {
		return usagef("download: missing NAME (or --list, -r DIR); for example: sockit download %s report.pdf", args[0])
	}
	base.Name = args[1]
	if base.Output == "" && client.DefaultOutput(base.Name, "") == "" {
		return usagef("NAME %q has no last element to name the output: give -o", base.Name)
	}
	return downloadAll(ctx, g, opts, []client.DownloadConfig{base})
}

// downloadAll runs the downloads, opts.concurrency at once, with one
// progress bar for their bytes on a terminal, and reports them.
func downloadAll(ctx context.Context, g *globals, opts downloadOptions, cfgs []client.DownloadConfig) error {
	start := time.Now()
	bar := newDownloadBar(g)
	var mu sync.Mutex
	have := make([]int64, len(cfgs))
	sizes := make([]int64, len(cfgs))
	var sumHave, sumSize int64
	results := make([]*client.DownloadResult, len(cfgs))
	errs := make([]error, len(cfgs))
	sem := make(chan struct{}, opts.concurrency)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].Progress = func(h, size int64) {
			if bar == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			// Running totals: a progress call per chunk must not walk
			// every file of a large -r.
			sumHave += h - have[i]
			sumSize += max(size, 0) - max(sizes[i], 0)
			have[i], sizes[i] = h, size
			bar.ChangeMax64(max(sumSize, sumHave, 1))
			_ = bar.Set64(sumHave)
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			results[i], errs[i] = client.Download(ctx, cfgs[i])
			if errors.Is(errs[i], client.ErrBadOutput) {
				errs[i] = usageError{errs[i]}
			}
			if errs[i] == nil {
				g.logger.Debug("downloaded", "name", results[i].Name, "path", results[i].Path, "bytes", results[i].Received, "resumed_from", results[i].ResumedFrom)
			}
		})
	}
	wg.Wait()
	if bar != nil {
		_ = bar.Finish()
	}
	if ctx.Err() != nil {
		if opts.json {
			_ = writeJSON(g.stdout, downloadDocument(cfgs, results, errs, time.Since(start)))
		}
		return errInterrupted
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if opts.json {
		if err := writeJSON(g.stdout, downloadDocument(cfgs, results, errs, time.Since(start))); err != nil {
			return err
		}
	} else {
		for i, r := range results {
			if errs[i] == nil {
				fmt.Fprintln(g.stderr, downloadLine(r))
			}
		}
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return failed[0]
	}
	for _, err := range failed[:len(failed)-1] {
		fmt.Fprintln(g.stderr, "sockit:", err)
	}
	return fmt.Errorf("%d of %d downloads failed; the last: %w", len(failed), len(cfgs), failed[len(failed)-1])
}

// downloadLine is the human summary of one download, on stderr.
func downloadLine(r *client.DownloadResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bytes", r.Path, r.Size)
	if r.ResumedFrom > 0 {
		fmt.Fprintf(&b, " (resumed from %d)", r.ResumedFrom)
	}
	if r.Restarted {
		b.WriteString(" (begun again: the partial file was of another version)")
	}
	fmt.Fprintf(&b, " in %s", fmtDuration(r.Duration))
	if s := r.Duration.Seconds(); s > 0 && r.Received >= 1<<20 {
		fmt.Fprintf(&b, ", %.1f MB/s", float64(r.Received)/s/1e6)
	}
	if r.Verified {
		fmt.Fprintf(&b, ", sha256 %s verified", r.SHA256)
	} else {
		fmt.Fprintf(&b, ", sha256 %s (not verified: no checksum given)", r.SHA256)
	}
	return b.String()
}

func newDownloadBar(g *globals) *progressbar.ProgressBar {
	f, ok := g.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("download"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// downloadJSON is the document of download --json (docs/json.md).
type downloadJSON struct {
	Schema  string             `json:"schema"`
	Files   []downloadJSONFile `json:"files"`
	Bytes   int64              `json:"bytes"`
	Seconds float64            `json:"seconds"`
	OK      bool               `json:"ok"`
}

type downloadJSONFile struct {
	Name        string  `json:"name"`
	Path        string  `json:"path"`
	Size        int64   `json:"size"`
	Received    int64   `json:"received"`
	ResumedFrom int64   `json:"resumed_from"`
	Restarted   bool    `json:"restarted"`
	SHA256      string  `json:"sha256,omitempty"`
	Verified    bool    `json:"verified"`
	Seconds     float64 `json:"seconds"`
	Error       string  `json:"error,omitempty"`
}

func downloadDocument(cfgs []client.DownloadConfig, results []*client.DownloadResult, errs []error, took time.Duration) downloadJSON {
	doc := downloadJSON{Schema: "sockit.download/v1", Files: []downloadJSONFile{}, Seconds: took.Seconds(), OK: true}
	for i, c := range cfgs {
		f := downloadJSONFile{Name: c.Name, Path: c.Output}
		if c.URL != "" {
			f.Name = c.URL
		}
		if r := results[i]; r != nil {
			f.Path, f.Size, f.Received, f.ResumedFrom, f.Restarted = r.Path, r.Size, r.Received, r.ResumedFrom, r.Restarted
			f.Seconds = r.Duration.Seconds()
			if errs[i] == nil {
				f.SHA256, f.Verified = r.SHA256, r.Verified
			}
			doc.Bytes += r.Received
		}
		if errs[i] != nil {
			f.Error = oneLine(errs[i].Error())
			doc.OK = false
		}
		doc.Files = append(doc.Files, f)
	}
	return doc
}
