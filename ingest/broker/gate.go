package broker

import (
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/ingest"
)

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

// Close stops accepting and disconnects the listener's clients.
func (l gatedTCP) Close(listeners.CloseFn) {
	l.TCP.Close(l.closeClients)
}

// Serve accepts connections like the TCP listener, wrapping each.
func (l gatedTCP) Serve(establish listeners.EstablishFn) {
	l.TCP.Serve(func(id string, c net.Conn) error {
		return establish(id, &gatedConn{Conn: c, refused: l.refused})
	})
}

// gatedConn holds back each PUBACK until the record it acknowledges is
// durable, without holding back the connection's reader.
//
// mochi writes a QoS 1 PUBACK as soon as the OnPublish hook returns. The hook
// submits the record to the spool and, instead of waiting for the fsync,
// tells the connection (expect) which packet id that commit belongs to. When
// mochi then writes the PUBACK, Write queues it behind the commit; everything
// written after it queues behind it too, so the order on the wire is mochi's
// order. A flusher goroutine, running only while something is queued, writes
// the queue out as commits complete, coalescing all the PUBACKs of one group
// commit into one write. So a connection carrying many messages in flight (a
// JT/T 808 gateway, a terminal back-filling after a tunnel) gets one fsync and
// one write per group, not one per message; and a connection whose record
// the spool refuses is closed with that PUBACK and all after it unsent, so
// the device resends them.
type gatedConn struct {
	net.Conn
	mu       sync.Mutex
	expected map[uint16]*ingest.Pending // packet id -> commit, set by OnPublish
	queue    []gatedWrite               // held writes, in wire order
	flushing bool                       // a flusher goroutine is running
	failed   bool                       // a commit failed: the connection is being closed
	refused  prometheus.Counter
}

type gatedWrite struct {
	b []byte
	p *ingest.Pending // nil: no commit to wait for
}

// underlying returns the wrapped connection (a *tls.Conn on TLS listeners).
func (c *gatedConn) underlying() net.Conn { return c.Conn }

// expect registers the commit that the PUBACK for packetID must wait for. It
// is called from the connection's read goroutine before mochi writes that
// PUBACK.
func (c *gatedConn) expect(packetID uint16, p *ingest.Pending) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		go p.Wait() // settle it; its PUBACK will not be sent
		return
	}
	if c.expected == nil {
		c.expected = make(map[uint16]*ingest.Pending)
	}
	c.expected[packetID] = p
	c.mu.Unlock()
}

// Write sends b at once when nothing is held and b acknowledges nothing
// pending; otherwise it queues a copy and returns. mochi writes whole packets,
// so b is one or more complete MQTT packets.
func (c *gatedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	var gate *ingest.Pending
	if len(c.expected) > 0 {
		gate = c.takeGate(b)
	}
	if gate == nil && len(c.queue) == 0 {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	c.queue = append(c.queue, gatedWrite{b: append([]byte(nil), b...), p: gate})
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	c.mu.Unlock()
	return len(b), nil
}

// takeGate returns the pending commit of the first PUBACK in b that has one.
// mochi writes each PUBACK on its own, so one gate per write is enough.
func (c *gatedConn) takeGate(b []byte) *ingest.Pending {
	for len(b) >= 2 {
		n, hdr := remainingLength(b[1:])
		if hdr == 0 || 1+hdr+n > len(b) {
			return nil
		}
		if b[0]&0xf0 == 0x40 && n >= 2 { // PUBACK
			id := uint16(b[1+hdr])<<8 | uint16(b[2+hdr])
			if p, ok := c.expected[id]; ok {
				delete(c.expected, id)
				return p
			}
		}
		b = b[1+hdr+n:]
	}
	return nil
}

// remainingLength decodes MQTT's variable-length integer; hdr is the number
// of bytes it took, 0 if b is too short or malformed.
func remainingLength(b []byte) (n, hdr int) {
	mult := 1
	for i := 0; i < 4 && i < len(b); i++ {
		n += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return n, i + 1
		}
		mult *= 128
	}
	return 0, 0
}

// flush writes the queue out in order, waiting for each held PUBACK's commit.
// Writes whose commits are already complete go out together in one syscall.
func (c *gatedConn) flush() {
	var out []byte
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.failed {
			c.flushing = false
			c.queue = nil
			c.mu.Unlock()
			c.send(out)
			return
		}
		head := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		if head.p != nil {
			select {
			case <-head.p.Done():
			default:
				// About to block on the next group commit: send what
				// is ready first.
				if !c.send(out) {
					return
				}
				out = out[:0]
			}
			if out := head.p.Wait(); out.Status == ingest.Unavailable {
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

// fail drops everything queued and closes the connection, so the device
// resends every message it has no PUBACK for.
func (c *gatedConn) fail() {
	c.mu.Lock()
	dropped := c.queue
	c.failed, c.queue, c.flushing = true, nil, false
	for _, p := range c.expected {
		dropped = append(dropped, gatedWrite{p: p})
	}
	c.expected = nil
	c.mu.Unlock()
	c.Conn.Close()
	// Their PUBACKs are not sent, but each Pending is still settled, so
	// metrics and the dedup window account for what did become durable.
	for _, w := range dropped {
		if w.p != nil {
			w.p.Wait()
		}
	}
}
