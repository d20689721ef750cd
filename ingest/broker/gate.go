package broker

import (
	"net"
	"sync"
	"sync/atomic"
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
	acks         *ackers // write the held PUBACKs of the listener's connections
}

// Serve accepts connections like the TCP listener, wrapping each.
func (l gatedTCP) Serve(establish listeners.EstablishFn) {
	l.TCP.Serve(func(id string, c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(connectTimeout))
		return establish(id, &gatedConn{Conn: c, refused: l.refused, acks: l.acks.assign()})
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
// while PUBACKs wait (PINGRESP, other acks). The PUBACKs of all connections
// are written by the listener's ackers (see ackQueue), not by a goroutine per
// connection: when a group commit completes, one goroutine per acker shard
// wakes and writes every waiting connection's ready bytes, one write per
// connection, so a group commit costs a few wake-ups instead of one per
// message. When the spool refuses a record, that PUBACK and everything after
// it are never sent and the connection is closed, so the device resends them.
type gatedConn struct {
	net.Conn
	refused prometheus.Counter
	acks    *ackQueue // the acker shard that drains this connection

	mu       sync.Mutex
	queue    []gatedWrite // waiting, in wire order
	draining bool         // the acker has taken the head of the queue and is writing it
	failed   bool         // a commit failed or a write broke: the connection is closing
}

// gatedWrite is bytes to send, after p's commit when p is set.
type gatedWrite struct {
	b []byte
	p *ingest.Pending
}

// ready reports whether w can be written now.
func (w *gatedWrite) ready() bool {
	if w.p == nil {
		return true
	}
	select {
	case <-w.p.Done():
		return true
	default:
		return false
	}
}

// underlying returns the wrapped connection (a *tls.Conn on TLS listeners).
func (c *gatedConn) underlying() net.Conn { return c.Conn }

// ack queues the PUBACK for packetID behind the commit p. It is called from
// the connection's read goroutine, in the order the PUBLISH packets arrived.
func (c *gatedConn) ack(packetID uint16, p *ingest.Pending) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		p.Wait() // account for the record; nothing is sent
		return
	}
	c.queue = append(c.queue, gatedWrite{b: []byte{0x40, 2, byte(packetID >> 8), byte(packetID)}, p: p})
	c.mu.Unlock()
	c.acks.add(c, p.Done())
}

// Write sends b at once when nothing is waiting; otherwise it queues a copy
// behind what is waiting, for the acker to send, and returns.
func (c *gatedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.queue) == 0 && !c.draining {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	// The queue's head waits on a commit registered with the acker, or
	// the acker is writing: either way it comes back for this.
	c.queue = append(c.queue, gatedWrite{b: append([]byte(nil), b...)})
	c.mu.Unlock()
	return len(b), nil
}

// drain writes out the ready head of the queue in one write, and again while
// more became ready meanwhile. Only the connection's acker calls it, so two
// drains never run at once. took and out are the acker's scratch buffers.
func (c *gatedConn) drain(took []gatedWrite, out []byte) ([]gatedWrite, []byte) {
	c.mu.Lock()
	for !c.failed {
		n := 0
		for n < len(c.queue) && c.queue[n].ready() {
			n++
		}
		if n == 0 {
			break
		}
		took = append(took[:0], c.queue[:n]...)
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:])
		c.queue = c.queue[:rest]
		c.draining = true
		c.mu.Unlock()

		out = out[:0]
		for i := range took {
			w := &took[i]
			if w.p != nil {
				if res := w.p.Wait(); res.Status == ingest.Unavailable {
					c.refused.Inc()
					settle(took[i+1:])
					c.fail()
					clear(took)
					return took, out
				}
			}
			out = append(out, w.b...)
		}
		clear(took)
		if _, err := c.Conn.Write(out); err != nil {
			c.fail()
			return took, out
		}
		c.mu.Lock()
		c.draining = false
	}
	c.draining = false
	c.mu.Unlock()
	return took, out
}

// fail drops everything waiting and closes the connection, so the device
// resends every message it has no PUBACK for.
func (c *gatedConn) fail() {
	c.mu.Lock()
	dropped := c.queue
	c.failed, c.queue, c.draining = true, nil, false
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

// ackers are a listener's acker shards; each connection is drained by one.
type ackers struct {
	shards []ackQueue
	next   atomic.Uint32
}

// newAckers makes n shards (at least one).
func newAckers(n int) *ackers {
	return &ackers{shards: make([]ackQueue, max(n, 1))}
}

// assign picks the shard of a new connection, round robin.
func (a *ackers) assign() *ackQueue {
	return &a.shards[int(a.next.Add(1)-1)%len(a.shards)]
}

// ackQueue writes the held PUBACKs of its connections as their commits
// complete. It keeps the commits in the order connections registered them
// (group commits complete in that order) and runs one goroutine while it has
// any: the goroutine waits for the oldest commit, then drains every
// connection registered with it. A connection's PUBACKs are registered in
// wire order with one shard, so when a commit's turn comes every commit
// queued before it on that connection is complete too, and drain finds them
// ready. With a store whose records complete out of order (cluster mode, one
// acknowledgement per record), a later record's PUBACK waits for the earlier
// ones, which MQTT's in-order PUBACKs require anyway.
type ackQueue struct {
	mu      sync.Mutex
	groups  []ackGroup // oldest first
	running bool       // a goroutine is draining the queue
}

// ackGroup is the connections waiting on one commit.
type ackGroup struct {
	done  <-chan struct{}
	conns []*gatedConn
}

// add registers c as waiting on the commit done.
func (q *ackQueue) add(c *gatedConn, done <-chan struct{}) {
	q.mu.Lock()
	if n := len(q.groups); n > 0 && q.groups[n-1].done == done {
		g := &q.groups[n-1]
		if g.conns[len(g.conns)-1] != c {
			g.conns = append(g.conns, c)
		}
	} else {
		q.groups = append(q.groups, ackGroup{done: done, conns: append(make([]*gatedConn, 0, 64), c)})
	}
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
}

// run drains the queue, and exits when it is empty.
func (q *ackQueue) run() {
	var took []gatedWrite
	var out []byte
	for {
		q.mu.Lock()
		if len(q.groups) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		g := q.groups[0]
		q.groups[0] = ackGroup{}
		q.groups = q.groups[1:]
		q.mu.Unlock()
		<-g.done
		for _, c := range g.conns {
			took, out = c.drain(took, out)
		}
	}
}
