//go:build !unix

package endpoint

import (
	"errors"
	"net"
	"runtime"
)

func listenFD(int) (net.Listener, error) {
	return nil, errors.New("fd:// endpoints are not supported on " + runtime.GOOS)
}

func listenPacketFD(int) (net.PacketConn, error) {
	return nil, errors.New("fd:// endpoints are not supported on " + runtime.GOOS)
}
