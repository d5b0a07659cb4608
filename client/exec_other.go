//go:build !unix

package client

import (
	"os"
	"os/exec"
)

// setProcessGroup has no process groups to use here; the child alone is
// terminated.
func setProcessGroup(*exec.Cmd) {}

// terminateGroup has no SIGTERM here: it kills the child.
func terminateGroup(p *os.Process) { _ = p.Kill() }

// killGroup kills the child.
func killGroup(p *os.Process) { _ = p.Kill() }
