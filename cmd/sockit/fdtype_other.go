//go:build !unix

package main

func fdIsPacket(int) bool { return false }

// openFileLimit is unknown here: no default connection limit.
func openFileLimit() int { return 0 }
