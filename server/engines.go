package server

import (
	"fmt"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/engine/goroutine"
)

// newEngine makes the engine called name. The epoll engine is added on Linux
// by engines_linux.go.
func newEngine(name string, cfg engine.Config) (engine.Engine, error) {
	switch name {
	case "goroutine":
		return goroutine.New(cfg), nil
	}
	if f := platformEngine(name); f != nil {
		return f(cfg)
	}
	if name == "epoll" {
		return nil, fmt.Errorf("sockit: the epoll engine is only available on Linux; use --engine goroutine")
	}
	return nil, fmt.Errorf("sockit: unknown engine %q (want %s)", name, engineNames)
}
