//go:build linux

package loadgen

import (
	"bufio"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// haveReactor reports whether this platform has the epoll publisher.
const haveReactor = true

// reactor publishes for many connections from one goroutine.
//
// A device on its own hardware costs the machine under test nothing; a
// goroutine pair per simulated device costs it two wake-ups, a channel
// handoff and a read that finds nothing per message, on the same cores as the
// service being measured. The reactor keeps the connections' sockets in one
// level-triggered epoll set and, per message, makes one write and one read:
// a socket is read only when epoll reports it readable, so no read returns
// EAGAIN. The epoll descriptor itself sits in Go's network poller, so the
// reactor parks like any goroutine instead of blocking a thread in
// epoll_wait.
type reactor struct {
	run    *run
	epfd   int
	file   *os.File // epfd, registered with Go's poller
	raw    syscall.RawConn
	mu     sync.Mutex       // guards conns and live while handshakes adopt connections
	conns  map[int32]*rconn // by socket
	live   int              // connections not yet finished or failed
	timers timerHeap        // paced connections waiting for their next send
	events []syscall.EpollEvent
	rbuf   []byte
}

// rconn is one connection driven by a reactor.
type rconn struct {
	c         *conn
	fd        int
	next      int // seq of the next message to send
	acked     int
	flight    []flight // unacknowledged, oldest first
	id        uint16   // last packet id used
	in        []byte   // bytes received, not yet a whole packet
	out       []byte   // bytes to send that the socket did not take
	wantOut   bool     // registered for EPOLLOUT
	lastWrite time.Duration
	at        time.Duration // timer: when to look at this connection again
	heapIdx   int           // in reactor.timers, or -1
	done      bool
}

// flight is one unacknowledged PUBLISH.
type flight struct {
	id   uint16
	sent time.Duration
}

// newReactor makes an empty reactor for r.
func newReactor(r *run) (*reactor, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("loadgen: epoll non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "loadgen-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("loadgen: epoll in the poller: %w", err)
	}
	return &reactor{run: r, epfd: epfd, file: f, raw: raw, conns: map[int32]*rconn{},
		events: make([]syscall.EpollEvent, 256), rbuf: make([]byte, 16<<10)}, nil
}

// adopt takes over a handshaken connection: its socket is duplicated into
// the reactor's epoll set and nc is closed (which only takes it out of Go's
// poller; the socket stays open through the duplicate). It is called from
// the handshake goroutines, before the reactor runs.
func (re *reactor) adopt(c *conn, nc net.Conn, br *bufio.Reader) error {
	if br.Buffered() > 0 {
		nc.Close()
		return errors.New("unexpected bytes after CONNACK")
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return errors.New("connection has no socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return fmt.Errorf("socket: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = syscall.Dup(int(s)) }); err != nil || dupErr != nil {
		nc.Close()
		return fmt.Errorf("dup socket: %w", errors.Join(err, dupErr))
	}
	nc.Close()
	syscall.CloseOnExec(fd)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(re.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	re.mu.Lock()
	re.conns[int32(fd)] = &rconn{c: c, fd: fd, heapIdx: -1, flight: make([]flight, 0, min(re.run.o.Window, 64))}
	re.live++
	re.mu.Unlock()
	return nil
}

// paceSlack lets a paced message go out this much before its time, so one
// wake-up sends every message due within it instead of one per wake-up.
const paceSlack = time.Millisecond

// tick bounds how long the reactor sleeps: it looks at ctx and at overdue
// PUBACKs at least this often.
const tick = 100 * time.Millisecond

// loop publishes until every connection has finished or failed, or ctx is
// done, then closes everything.
func (re *reactor) loop(ctx context.Context) {
	defer re.close()
	r, o := re.run, &re.run.o
	for _, rc := range re.conns {
		re.pump(rc)
	}
	nextCheck := time.Since(r.t0) + time.Second
	for re.live > 0 {
		if ctx.Err() != nil {
			return
		}
		now := time.Since(r.t0)
		wake := now + tick
		if len(re.timers) > 0 && re.timers[0].at < wake {
			wake = re.timers[0].at
		}
		n, err := re.wait(r.t0.Add(wake))
		if err != nil {
			for _, rc := range re.conns {
				re.fail(rc, fmt.Errorf("epoll: %w", err))
			}
			return
		}
		for _, ev := range re.events[:n] {
			rc := re.conns[ev.Fd]
			if rc == nil || rc.done {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				re.flush(rc)
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && !rc.done {
				re.read(rc)
			}
		}
		now = time.Since(r.t0)
		for len(re.timers) > 0 && re.timers[0].at <= now+paceSlack {
			rc := heap.Pop(&re.timers).(*rconn)
			re.pump(rc)
		}
		if now >= nextCheck {
			nextCheck = now + time.Second
			for _, rc := range re.conns {
				if !rc.done && len(rc.flight) > 0 && now-rc.flight[0].sent > o.AckTimeout {
					re.fail(rc, fmt.Errorf("waiting for PUBACKs: no PUBACK for packet id %d within %s", rc.flight[0].id, o.AckTimeout))
				}
			}
		}
	}
}

// wait returns the number of ready events, parking until some are ready or
// the deadline passes (then 0). With the deadline already past it only
// polls: the poller would report the deadline without looking.
func (re *reactor) wait(deadline time.Time) (int, error) {
	if !time.Now().Before(deadline) {
		for {
			n, err := syscall.EpollWait(re.epfd, re.events, 0)
			if err != syscall.EINTR {
				return n, err
			}
		}
	}
	if err := re.file.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var n int
	var werr error
	err := re.raw.Read(func(uintptr) bool {
		n, werr = syscall.EpollWait(re.epfd, re.events, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
			return false
		}
		return n > 0 || werr != nil
	})
	if werr != nil {
		return 0, werr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return n, err
}

// read takes what the socket has and handles every whole packet in it.
func (re *reactor) read(rc *rconn) {
	n, err := syscall.Read(rc.fd, re.rbuf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case err != nil:
		re.fail(rc, fmt.Errorf("waiting for PUBACKs: read: %w", err))
		return
	case n == 0:
		re.fail(rc, errors.New("waiting for PUBACKs: connection closed by the broker"))
		return
	}
	b := re.rbuf[:n]
	if len(rc.in) > 0 {
		rc.in = append(rc.in, b...)
		b = rc.in
	}
	for !rc.done {
		typ, body, size, err := splitPacket(b)
		if err != nil {
			re.fail(rc, err)
			return
		}
		if size == 0 {
			break // incomplete
		}
		re.packet(rc, typ, body)
		b = b[size:]
	}
	if rc.done {
		return
	}
	rc.in = append(rc.in[:0], b...)
	re.pump(rc)
}

// splitPacket returns the first whole packet of b and its size on the wire;
// size 0 means b holds only part of one.
func splitPacket(b []byte) (typ byte, body []byte, size int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, nil
	}
	length, shift, i := 0, 0, 1
	for {
		if i >= len(b) {
			return 0, nil, 0, nil
		}
		if i > 4 {
			return 0, nil, 0, errors.New("malformed remaining length")
		}
		length |= int(b[i]&0x7f) << shift
		shift += 7
		i++
		if b[i-1]&0x80 == 0 {
			break
		}
	}
	if len(b) < i+length {
		return 0, nil, 0, nil
	}
	return b[0] >> 4, b[i : i+length], i + length, nil
}

// packet handles one packet from the broker.
func (re *reactor) packet(rc *rconn, typ byte, body []byte) {
	r := re.run
	switch typ {
	case 4: // PUBACK
		if len(body) < 2 {
			re.fail(rc, errors.New("waiting for PUBACKs: short PUBACK"))
			return
		}
		id := uint16(body[0])<<8 | uint16(body[1])
		k := -1
		for i := range rc.flight {
			if rc.flight[i].id == id {
				k = i
				break
			}
		}
		if k < 0 {
			r.fail(fmt.Errorf("device %s: PUBACK for packet id %d, which is not outstanding", rc.c.cred.ID, id))
			return
		}
		now := time.Since(r.t0)
		sent := rc.flight[k].sent
		rc.flight = append(rc.flight[:k], rc.flight[k+1:]...)
		rc.acked++
		r.acked.Add(1)
		r.hist.record(now - sent)
		for {
			last := r.lastAck.Load()
			if int64(now) <= last || r.lastAck.CompareAndSwap(last, int64(now)) {
				break
			}
		}
		if rc.acked == r.o.Messages {
			re.finish(rc)
		}
	case 13: // PINGRESP
	default:
		re.fail(rc, fmt.Errorf("waiting for PUBACKs: unexpected packet type %d", typ))
	}
}

// due is when message seq may go out (since t0); 0 when unpaced. The
// interval is computed first, as conn.publish does, so that long runs do not
// overflow.
func (re *reactor) due(rc *rconn, seq int) time.Duration {
	o := &re.run.o
	if o.Rate <= 0 {
		return 0
	}
	interval := time.Second * time.Duration(len(o.Devices)) / time.Duration(o.Rate)
	return time.Second*time.Duration(rc.c.index)/time.Duration(o.Rate) + time.Duration(seq)*interval
}

// pump sends what the window and the pace allow, in one write, and sets the
// connection's timer when it must wait for the pace.
func (re *reactor) pump(rc *rconn) {
	if rc.done {
		return
	}
	r, o := re.run, &re.run.o
	now := time.Since(r.t0)
	start := len(rc.out)
	for rc.next < o.Messages && len(rc.flight) < o.Window && re.due(rc, rc.next) <= now+paceSlack {
		if rc.id++; rc.id == 0 {
			rc.id = 1
		}
		topic, payload := o.Payload(rc.c.cred.ID, rc.next, o.Now())
		rc.out = appendPublish(rc.out, topic, rc.id, payload)
		rc.flight = append(rc.flight, flight{id: rc.id, sent: now})
		rc.next++
		r.sent.Add(1)
	}
	if rc.next < o.Messages && len(rc.flight) < o.Window {
		// Waiting for the pace: wake at the next send, or in time for a
		// PINGREQ that keeps the session.
		at := re.due(rc, rc.next)
		if len(rc.out) == start && now-rc.lastWrite >= pingEvery {
			rc.out = append(rc.out, 0xc0, 0) // PINGREQ
		}
		re.schedule(rc, min(at, now+pingEvery))
	}
	if len(rc.out) > 0 && !rc.wantOut {
		re.flush(rc)
	}
}

// schedule sets rc's timer to at.
func (re *reactor) schedule(rc *rconn, at time.Duration) {
	rc.at = at
	if rc.heapIdx >= 0 {
		heap.Fix(&re.timers, rc.heapIdx)
		return
	}
	heap.Push(&re.timers, rc)
}

// flush writes what rc has to send; what the socket does not take waits for
// EPOLLOUT.
func (re *reactor) flush(rc *rconn) {
	for len(rc.out) > 0 {
		n, err := syscall.Write(rc.fd, rc.out)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			re.fail(rc, fmt.Errorf("write: %w", err))
			return
		}
		rc.lastWrite = time.Since(re.run.t0)
		rc.out = rc.out[:copy(rc.out, rc.out[n:])]
	}
	want := len(rc.out) > 0
	if want != rc.wantOut {
		rc.wantOut = want
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(rc.fd)}
		if want {
			ev.Events |= syscall.EPOLLOUT
		}
		if err := syscall.EpollCtl(re.epfd, syscall.EPOLL_CTL_MOD, rc.fd, &ev); err != nil {
			re.fail(rc, fmt.Errorf("epoll_ctl mod: %w", err))
		}
	}
}

// finish disconnects a connection whose messages are all acknowledged.
func (re *reactor) finish(rc *rconn) {
	syscall.Write(rc.fd, []byte{0xe0, 0}) // DISCONNECT; the device is done either way
	re.drop(rc)
	re.run.done.Add(1)
}

// fail reports err for rc and closes it.
func (re *reactor) fail(rc *rconn, err error) {
	if rc.done {
		return
	}
	re.drop(rc)
	re.run.fail(fmt.Errorf("device %s: %w", rc.c.cred.ID, err))
}

// drop closes rc's socket and forgets its timer.
func (re *reactor) drop(rc *rconn) {
	rc.done = true
	re.live--
	if rc.heapIdx >= 0 {
		heap.Remove(&re.timers, rc.heapIdx)
	}
	syscall.EpollCtl(re.epfd, syscall.EPOLL_CTL_DEL, rc.fd, nil)
	syscall.Close(rc.fd)
}

// close closes every connection still open (ctx ended) and the epoll set.
func (re *reactor) close() {
	for _, rc := range re.conns {
		if !rc.done {
			re.drop(rc)
		}
	}
	re.file.Close()
}

// appendPublish appends a QoS 1 PUBLISH of payload on topic with packet id.
func appendPublish(dst []byte, topic string, id uint16, payload []byte) []byte {
	n := 2 + len(topic) + 2 + len(payload)
	dst = append(dst, 0x32)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			break
		}
	}
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	dst = append(dst, byte(id>>8), byte(id))
	return append(dst, payload...)
}

// timerHeap orders paced connections by when to look at them again.
type timerHeap []*rconn

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *timerHeap) Push(x any) {
	rc := x.(*rconn)
	rc.heapIdx = len(*h)
	*h = append(*h, rc)
}
func (h *timerHeap) Pop() any {
	old := *h
	rc := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	rc.heapIdx = -1
	return rc
}
