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

func TestServices(t *testing.T) {
	for _, eng := range engines {
		conntest.RunServices(t, eng)
	}
}

func TestBadInput(t *testing.T) {
	for _, eng := range engines {
		conntest.RunBadInput(t, eng)
	}
}
