//go:build !linux

package server

import "github.com/sockit/sockit/internal/engine"

// engineNames lists the engines this build has.
const engineNames = "goroutine"

func platformEngine(string) func(engine.Config) (engine.Engine, error) { return nil }
