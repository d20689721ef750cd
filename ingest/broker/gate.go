package broker

import (
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/ingest"
)

// connectTimeout bounds how long a new connection may take to send CONNECT;
// mochi sets its keepalive deadline only after reading it.
const connectTimeout = 10 * time.Second

// gatedTCP is mochi's TCP listener with every accepted connection wrapped in
// a gatedConn.
type gatedTCP struct {
	*listeners.TCP
	refused prometheus.Counter // connections closed because the spool refused a record
	// closeClients disconnects the listener's clients on Close. mochi's own
	// (Server.closeListenerClients) read-locks its client map twice, through
	// Clients.GetByListener calling Len, and deadlocks the shutdown when a
	// connection being set up asks for the write lock in between.
	closeClients func(listener string)
}

// Serve accepts connections like the TCP listener, wrapping each.
func (l gatedTCP) Serve(establish listeners.EstablishFn) {
	l.TCP.Serve(func(id string, c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(connectTimeout))
		return establish(id, &gatedConn{Conn: c, refused: l.refused})
	})
}

// Close stops accepting and disconnects the listener's clients.
func (l gatedTCP) Close(listeners.CloseFn) {
	l.TCP.Close(l.closeClients)
}

// gatedConn sends each QoS 1 PUBACK only once the record it acknowledges is
// durable, without holding back the connection's reader.
//
// For a QoS 1 message the OnPublish hook submits the record to the spool and,
// instead of waiting for the fsync, hands the commit to the connection (ack)
// and tells mochi to drop the packet: mochi then neither acknowledges it nor
// keeps it in its session, so the only PUBACK the device can ever get is the
// one written here, after the commit. The connection keeps one queue of
// outgoing bytes in wire order — its own PUBACKs and whatever mochi writes
// (PINGRESP, other acks) — and a flusher goroutine, running only while
// something is queued, writes it out as commits complete, coalescing all the
// PUBACKs of one group commit into one write. A connection carrying many
// messages in flight (a JT/T 808 gateway, a terminal back-filling after a
// tunnel) thus gets one fsync and one write per group, not per message. When
// the spool refuses a record, that PUBACK and everything after it are never
// sent and the connection is closed, so the device resends them.
type gatedConn struct {
	net.Conn
	refused prometheus.Counter

	mu       sync.Mutex
	queue    []gatedWrite // waiting, in wire order
	flushing bool         // a flusher goroutine owns the head of the wire
	failed   bool         // a commit failed or a write broke: the connection is closing
}

// gatedWrite is bytes to send, after p's commit when p is set.
type gatedWrite struct {
	b []byte
	p *ingest.Pending
}

// underlying returns the wrapped connection (a *tls.Conn on TLS listeners).
func (c *gatedConn) underlying() net.Conn { return c.Conn }

// ack queues the PUBACK for packetID behind the commit p. It is called from
// the connection's read goroutine, in the order the PUBLISH packets arrived.
func (c *gatedConn) ack(packetID uint16, p *ingest.Pending) {
	c.enqueue(gatedWrite{b: []byte{0x40, 2, byte(packetID >> 8), byte(packetID)}, p: p})
}

// Write sends b at once when nothing is waiting; otherwise it queues a copy
// behind what is waiting and returns.
func (c *gatedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.queue) == 0 && !c.flushing {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	c.mu.Unlock()
	c.enqueue(gatedWrite{b: append([]byte(nil), b...)})
	return len(b), nil
}

func (c *gatedConn) enqueue(w gatedWrite) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		settle([]gatedWrite{w})
		return
	}
	c.queue = append(c.queue, w)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	c.mu.Unlock()
}

// flush writes the queue out in order, waiting for each PUBACK's commit.
// Writes whose commits are already complete go out together in one syscall.
func (c *gatedConn) flush() {
	var out []byte
	for {
		c.mu.Lock()
		if c.failed {
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			if len(out) == 0 {
				c.flushing = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			if !c.send(out) {
				return
			}
			out = out[:0]
			continue // more may have been queued while sending
		}
		head := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		if head.p != nil {
			select {
			case <-head.p.Done():
			default:
				// About to wait for the next group commit: send what
				// is ready first.
				if !c.send(out) {
					settle([]gatedWrite{head})
					return
				}
				out = out[:0]
			}
			if res := head.p.Wait(); res.Status == ingest.Unavailable {
				c.refused.Inc()
				c.fail()
				return
			}
		}
		out = append(out, head.b...)
	}
}

// send writes b; on error the connection is failed.
func (c *gatedConn) send(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if _, err := c.Conn.Write(b); err != nil {
		c.fail()
		return false
	}
	return true
}

// fail drops everything waiting and closes the connection, so the device
// resends every message it has no PUBACK for.
func (c *gatedConn) fail() {
	c.mu.Lock()
	dropped := c.queue
	c.failed, c.queue, c.flushing = true, nil, false
	c.mu.Unlock()
	c.Conn.Close()
	settle(dropped)
}

// Close closes the connection; PUBACKs still waiting are not sent.
func (c *gatedConn) Close() error {
	c.mu.Lock()
	dropped := c.queue
	c.failed, c.queue = true, nil
	c.mu.Unlock()
	err := c.Conn.Close()
	go settle(dropped)
	return err
}

// settle waits out the commits of writes that will not be sent, so metrics
// and the dedup window still account for records that did become durable.
func settle(ws []gatedWrite) {
	for _, w := range ws {
		if w.p != nil {
			w.p.Wait()
		}
	}
}
