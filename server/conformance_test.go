package server_test

import (
	"testing"

	"github.com/sockit/sockit/internal/conntest"
)

// engines lists the engines every conformance test runs on.
var engines = []string{"goroutine", "epoll", "epoll:1"}

func TestSemantics(t *testing.T) {
	for _, eng := range engines {
		conntest.RunSemantics(t, eng)
	}
}

func TestDatagramSemantics(t *testing.T) {
	for _, eng := range engines {
		conntest.RunDatagramSemantics(t, eng)
	}
}
