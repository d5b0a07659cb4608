//go:build race

package service_test

// raceEnabled: the race detector makes sync.Pool drop some of what is Put,
// so allocation counts are not pinned under it.
const raceEnabled = true
