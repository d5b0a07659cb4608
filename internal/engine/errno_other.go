//go:build !unix

package engine

func isTemporaryErrno(error) bool { return false }
