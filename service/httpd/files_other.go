//go:build !unix

package httpd

// openFlags: no non-blocking open outside Unix.
const openFlags = 0
