package bench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procSample is a target's memory at one moment.
type procSample struct {
	rss int64 // bytes; 0 if unknown
	ok  bool
}

// readProc reads VmRSS from /proc/PID/status.
func readProc(pid int) procSample {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procSample{}
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, found := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !found {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) < 1 {
			return procSample{}
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return procSample{}
		}
		return procSample{rss: kb << 10, ok: true}
	}
	return procSample{}
}

// cpuSample is CPU time used so far; ok is false when it could not be read.
type cpuSample struct {
	user, sys time.Duration
	ok        bool
}

func (c cpuSample) total() time.Duration { return c.user + c.sys }

// procCPU reads utime and stime of process pid from /proc/PID/stat (all its
// threads).
func procCPU(pid int) cpuSample {
	if pid <= 0 {
		return cpuSample{}
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuSample{}
	}
	// The command name is in parentheses and may hold spaces: fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuSample{}
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15): indexes 11 and 12 here.
	if len(f) < 13 {
		return cpuSample{}
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuSample{}
	}
	tick := time.Second / clockTicks
	return cpuSample{user: time.Duration(ut) * tick, sys: time.Duration(st) * tick, ok: true}
}

// selfCPU is the generator's own CPU time (getrusage RUSAGE_SELF).
func selfCPU() cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	return cpuSample{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
		ok:   true,
	}
}
