package simulators

import (
	"bufio"
	"net"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// readBuffer is the per-connection read buffer. The broker sends a device
// little (CONNACK, PUBACKs of 4 bytes, PINGRESP), but paho reads each packet
// a byte at a time: three read syscalls per PUBACK without a buffer.
const readBuffer = 256

// bufferedConn is a net.Conn whose reads go through a small buffer. paho
// reads from one goroutine only, so the buffer needs no lock.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialBuffered opens a plain TCP connection to the broker for paho, with
// buffered reads. It is used for tcp:// and mqtt:// brokers only; paho dials
// TLS and websocket brokers itself.
func dialBuffered(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: o.ConnectTimeout}
	if o.Dialer != nil {
		d = *o.Dialer
	}
	nc, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, readBuffer)}, nil
}

// plainTCP reports whether broker is a URL paho would dial as plain TCP.
func plainTCP(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && (u.Scheme == "tcp" || u.Scheme == "mqtt")
}
