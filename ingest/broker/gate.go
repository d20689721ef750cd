package broker

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
		g := &gatedConn{Conn: c, refused: l.refused, acks: l.acks.assign()}
		if sc, ok := c.(syscall.Conn); ok {
			g.raw, _ = sc.SyscallConn() // nil: every write goes through writeSlow
		}
		return establish(id, g)
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
// instead of waiting for the fsync, hands the commit to the connection (ack);
// mochi neither acknowledges nor keeps the message, so the only PUBACK the
// device can ever get is the one written here, after the commit. The
// connection keeps one queue of outgoing bytes in wire order — its own PUBACKs
// and whatever mochi writes while PUBACKs wait (PINGRESP, other acks).
//
// The PUBACKs of all connections are written by the listener's ackers (see
// ackQueue), not by a goroutine per connection: when a group commit
// completes, one goroutine per acker shard wakes and writes every waiting
// connection's ready bytes, one write per connection, so a group commit costs
// a few wake-ups instead of one per message. The acker never blocks on a
// connection: it makes one non-blocking write, and a connection whose socket
// does not take everything (a device that publishes without reading, or a TLS
// connection, which cannot write part of a record) gets a goroutine of its own
// that writes with blocking writes until it has caught up (writeSlow).
//
// When the spool refuses a record, the PUBACKs before it are sent as far as
// the socket takes them at once, that PUBACK and everything after it never
// are, and the connection is closed, so the device resends them. A connection with more than maxHeldWrites writes
// waiting is closed too: it has more QoS 1 messages unacknowledged than MQTT's
// packet ids can tell apart, so its device is not reading.
type gatedConn struct {
	net.Conn
	raw     syscall.RawConn // the TCP socket, for non-blocking writes; nil on TLS
	refused prometheus.Counter
	acks    *ackQueue // the acker shard that drains this connection

	mu       sync.Mutex
	queue    []gatedWrite // waiting, in wire order
	draining bool         // a drainer has taken the head of the queue and is writing it
	slow     bool         // writeSlow owns the draining until it has caught up
	failed   bool         // a commit failed or a write broke: the connection is closing
}

// maxHeldWrites bounds a connection's queue: more PUBACKs held than packet
// ids exist means the device keeps publishing without reading its socket.
const maxHeldWrites = 1 << 16

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
	if len(c.queue) >= maxHeldWrites {
		c.mu.Unlock()
		c.acks.stalled.Inc()
		p.Wait()
		c.fail()
		return
	}
	c.queue = append(c.queue, gatedWrite{b: []byte{0x40, 2, byte(packetID >> 8), byte(packetID)}, p: p})
	c.mu.Unlock()
	c.acks.add(c, p.Done())
}

// Write sends b at once when nothing is waiting; otherwise it queues a copy
// behind what is waiting, for the drainer to send, and returns.
func (c *gatedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.queue) == 0 && !c.draining && !c.slow {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	// The queue's head waits on a commit registered with the acker, or a
	// drainer is writing: either way it comes back for this.
	c.queue = append(c.queue, gatedWrite{b: append([]byte(nil), b...)})
	c.mu.Unlock()
	return len(b), nil
}

// takeReady moves the ready head of the queue into took and returns it; c.mu
// is held.
func (c *gatedConn) takeReady(took []gatedWrite) []gatedWrite {
	n := 0
	for n < len(c.queue) && c.queue[n].ready() {
		n++
	}
	took = append(took[:0], c.queue[:n]...)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return took
}

// collect appends the bytes of took to out, settling each commit. On a
// refused commit it returns ok false, having settled the rest of took: out
// then holds the writes before the refusal.
func (c *gatedConn) collect(took []gatedWrite, out []byte) (_ []byte, ok bool) {
	for i := range took {
		w := &took[i]
		if w.p != nil {
			if res := w.p.Wait(); res.Status == ingest.Unavailable {
				c.refused.Inc()
				settle(took[i+1:])
				return out, false
			}
		}
		out = append(out, w.b...)
	}
	return out, true
}

// drain writes out the ready head of the queue in one non-blocking write, and
// again while more became ready meanwhile. Only the connection's acker calls
// it, and it does nothing while writeSlow owns the connection, so two drains
// never run at once. What the socket does not take goes to writeSlow. took
// and out are the acker's scratch buffers.
func (c *gatedConn) drain(took []gatedWrite, out []byte) ([]gatedWrite, []byte) {
	c.mu.Lock()
	for !c.failed && !c.slow {
		took = c.takeReady(took)
		if len(took) == 0 {
			break
		}
		c.draining = true
		c.mu.Unlock()

		var ok bool
		out, ok = c.collect(took, out[:0])
		clear(took)
		n, err := c.tryWrite(out)
		switch {
		case err != nil:
			c.fail()
			return took, out
		case !ok:
			// The acknowledgements before the refusal went out as far
			// as the socket took them; the device resends the rest.
			c.fail()
			return took, out
		case n < len(out):
			c.mu.Lock()
			c.slow, c.draining = true, false
			c.mu.Unlock()
			go c.writeSlow(append([]byte(nil), out[n:]...))
			return took, out
		}
		c.mu.Lock()
		c.draining = false
	}
	c.mu.Unlock()
	return took, out
}

// tryWrite makes one non-blocking write of b and returns how much of it the
// socket took; without a raw socket (TLS) it writes nothing.
func (c *gatedConn) tryWrite(b []byte) (int, error) {
	if c.raw == nil || len(b) == 0 {
		return 0, nil
	}
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				break
			}
		}
		return true // one attempt: never wait for the socket here
	})
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if n < 0 {
		n = 0
	}
	if werr != nil {
		return n, werr
	}
	return n, err
}

// writeSlow writes rest and then whatever becomes ready, with blocking
// writes, until nothing ready is left; then the acker drains the connection
// again. mochi's keepalive deadline bounds each write.
func (c *gatedConn) writeSlow(rest []byte) {
	var took []gatedWrite
	out := rest
	for {
		if len(out) > 0 {
			if _, err := c.Conn.Write(out); err != nil {
				c.fail()
				return
			}
		}
		c.mu.Lock()
		if c.failed {
			c.mu.Unlock()
			return
		}
		took = c.takeReady(took)
		if len(took) == 0 {
			// Anything that becomes ready from now on has its commit
			// still ahead in the acker, which will drain it.
			c.slow = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		var ok bool
		out, ok = c.collect(took, out[:0])
		clear(took)
		if !ok {
			c.Conn.Write(out)
			c.fail()
			return
		}
	}
}

// fail drops everything waiting and closes the connection, so the device
// resends every message it has no PUBACK for.
func (c *gatedConn) fail() {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return // closed already
	}
	dropped := c.queue
	c.failed, c.queue, c.draining = true, nil, false
	c.mu.Unlock()
	c.Conn.Close()
	go settle(dropped) // later commits must not hold up the caller (an acker)
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
	shards  []ackQueue
	next    atomic.Uint32
	stalled prometheus.Counter // connections closed for holding maxHeldWrites
}

// newAckers makes n shards (at least one); stalled counts the connections
// closed for not reading.
func newAckers(n int, stalled prometheus.Counter) *ackers {
	a := &ackers{shards: make([]ackQueue, max(n, 1)), stalled: stalled}
	for i := range a.shards {
		a.shards[i].stalled = stalled
	}
	return a
}

// assign picks the shard of a new connection, round robin.
func (a *ackers) assign() *ackQueue {
	return &a.shards[int(a.next.Add(1)-1)%len(a.shards)]
}

// ackQueue writes the held PUBACKs of its connections as their commits
// complete.
//
// Connections register with the commit their PUBACK waits on; the
// connections waiting on one commit form a group, and consecutive
// registrations on the same commit (a group commit of the spool) join one
// group. Each group has a goroutine that waits for its commit and then hands
// the group to the shard's drainer, which runs while completed groups are
// queued and drains every connection of each. Groups are drained in the order
// their commits complete, not the order they were registered, so with a store
// whose records complete out of order (cluster mode, one acknowledgement per
// record) one connection's slow record does not hold up another's PUBACK;
// within a connection, drain takes only the ready head of the queue, which
// keeps its PUBACKs in the order of its PUBLISHes as MQTT requires.
type ackQueue struct {
	stalled prometheus.Counter

	mu        sync.Mutex
	open      *ackGroup   // the newest group, still taking registrations
	completed []*ackGroup // commits complete, not drained yet
	running   bool        // a goroutine is draining completed
}

// ackGroup is the connections waiting on one commit.
type ackGroup struct {
	done  <-chan struct{}
	conns []*gatedConn
}

// groupPool recycles groups with their connection slices.
var groupPool = sync.Pool{New: func() any { return new(ackGroup) }}

// add registers c as waiting on the commit done.
func (q *ackQueue) add(c *gatedConn, done <-chan struct{}) {
	q.mu.Lock()
	if g := q.open; g != nil && g.done == done {
		if g.conns[len(g.conns)-1] != c {
			g.conns = append(g.conns, c)
		}
		q.mu.Unlock()
		return
	}
	g := groupPool.Get().(*ackGroup)
	g.done, g.conns = done, append(g.conns[:0], c)
	q.open = g
	q.mu.Unlock()
	go q.await(g)
}

// await hands g to the drainer once its commit is complete.
func (q *ackQueue) await(g *ackGroup) {
	<-g.done
	q.mu.Lock()
	if q.open == g {
		q.open = nil // a registration on this commit now would find it complete
	}
	q.completed = append(q.completed, g)
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
}

// run drains the completed groups, and exits when there are none.
func (q *ackQueue) run() {
	var took []gatedWrite
	var out []byte
	for {
		q.mu.Lock()
		if len(q.completed) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		g := q.completed[0]
		q.completed[0] = nil
		q.completed = q.completed[1:]
		q.mu.Unlock()
		for _, c := range g.conns {
			took, out = c.drain(took, out)
		}
		clear(g.conns)
		g.done, g.conns = nil, g.conns[:0]
		groupPool.Put(g)
	}
}
