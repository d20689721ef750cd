//go:build !linux

package loadgen

import (
	"bufio"
	"context"
	"errors"
	"net"
)

// haveReactor reports whether this platform has the epoll publisher.
const haveReactor = false

// reactor is the epoll publisher, Linux only.
type reactor struct{}

func newReactor(*run) (*reactor, error) {
	return nil, errors.New("loadgen: no reactor on this platform")
}

func (*reactor) adopt(*conn, net.Conn, *bufio.Reader) error {
	return errors.New("loadgen: no reactor on this platform")
}

func (*reactor) loop(context.Context) {}
func (*reactor) close()               {}
