package server_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/sockit/sockit/internal/conntest"
)

// TestScale connects thousands of clients at once. It runs in CI's own step
// without the race detector (SOCKIT_SCALE=1), which would multiply its cost.
func TestScale(t *testing.T) {
	if os.Getenv("SOCKIT_SCALE") == "" || raceEnabled {
		t.Skip("set SOCKIT_SCALE=1 and run without -race")
	}
	raiseNoFile(t, 20000)
	for _, eng := range engines {
		t.Run(eng+"/conns=9000", func(t *testing.T) { conntest.RunScale(t, eng, 9000) })
	}
}

// raiseNoFile raises the soft open-file limit towards the hard limit; each
// connection costs two descriptors here (client and server in one process).
func raiseNoFile(t *testing.T, want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising RLIMIT_NOFILE: %v", err)
		}
	}
	if lim.Cur < 2*9000+100 {
		t.Skipf("open-file limit %d is too low for 9000 connections in one process", lim.Cur)
	}
}
