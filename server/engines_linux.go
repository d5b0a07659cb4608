//go:build linux

package server

import (
	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/engine/epoll"
)

// engineNames lists the engines this build has.
const engineNames = "goroutine, epoll"

func platformEngine(name string) func(engine.Config) (engine.Engine, error) {
	if name == "epoll" {
		return func(cfg engine.Config) (engine.Engine, error) { return epoll.New(cfg) }
	}
	return nil
}
