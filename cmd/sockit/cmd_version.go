package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; without
// it the module version from the build info is used.
var version = ""

// versionInfo is what version prints, and its --json document
// (sockit.version/v1, docs/json.md).
type versionInfo struct {
	Schema    string `json:"schema"`
	Version   string `json:"version"`                // -ldflags version, else the module's, else (devel)
	Revision  string `json:"vcs_revision,omitempty"` // the commit it was built from
	Time      string `json:"vcs_time,omitempty"`     // that commit's time (RFC 3339)
	Modified  bool   `json:"vcs_modified,omitempty"` // built from a tree with changes
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

func readVersion() versionInfo {
	vi := versionInfo{Schema: "sockit.version/v1", Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if vi.Version == "" {
		vi.Version = "(devel)"
		if ok && bi.Main.Version != "" {
			vi.Version = bi.Main.Version
		}
	}
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vi.Revision = s.Value
			case "vcs.time":
				vi.Time = s.Value
			case "vcs.modified":
				vi.Modified = s.Value == "true"
			}
		}
	}
	return vi
}

func versionString() string {
	vi := readVersion()
	s := fmt.Sprintf("sockit %s %s %s", vi.Version, vi.GoVersion, vi.Platform)
	if vi.Revision != "" {
		rev := vi.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if vi.Modified {
			rev += "+dirty"
		}
		s += " (" + rev + " " + vi.Time + ")"
	}
	return s
}

func newVersionCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "print the version",
		Example: "  sockit version\n  sockit version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				return writeJSON(g.stdout, readVersion())
			}
			_, err := fmt.Fprintln(g.stdout, versionString())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as a sockit.version/v1 JSON document")
	return cmd
}

// isCobraUsageError reports whether err is one of cobra's own argument errors
// (unknown command, wrong argument count), which are usage errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
