package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// positional checks a command's arguments against names, what each one is
// in order; with more, the last may repeat. A missing argument is named, with
// the command's first example; an extra one is shown. Both are usage errors.
func positional(more bool, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("%s: missing %s%s", commandName(cmd), strings.Join(names[len(args):], " and "), exampleHint(cmd))
		}
		if !more && len(args) > len(names) {
			return usagef("%s takes %s; %q is one argument too many%s", commandName(cmd), strings.Join(names, " "), args[len(names)], exampleHint(cmd))
		}
		return nil
	}
}

// commandName is cmd's path below the root: "serve", "http get".
func commandName(cmd *cobra.Command) string {
	_, name, _ := strings.Cut(cmd.CommandPath(), " ")
	return name
}

// exampleHint is "; for example: LINE" for the first line of cmd's examples
// that runs cmd, or "".
func exampleHint(cmd *cobra.Command) string {
	for line := range strings.SplitSeq(cmd.Example, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, cmd.CommandPath()+" ") && !strings.HasPrefix(line, "#") {
			return "; for example: " + line
		}
	}
	return ""
}
