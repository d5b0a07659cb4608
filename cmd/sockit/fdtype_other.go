//go:build !unix

package main

func fdIsPacket(int) bool { return false }
