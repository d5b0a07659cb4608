//go:build !linux

package bench

import "time"

type procSample struct {
	rss int64
	ok  bool
}

// readProc is Linux-only (/proc); elsewhere the target's memory is unknown.
func readProc(int) procSample { return procSample{} }

type cpuSample struct {
	user, sys time.Duration
	ok        bool
}

func (c cpuSample) total() time.Duration { return c.user + c.sys }

func procCPU(int) cpuSample { return cpuSample{} }

func selfCPU() cpuSample { return cpuSample{} }
