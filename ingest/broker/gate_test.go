package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// recordingConn records every Write call.
type recordingConn struct {
	net.Conn
	writes chan []byte
	closed chan struct{}
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.writes <- append([]byte(nil), b...)
	return len(b), nil
}

func (r *recordingConn) Close() error { close(r.closed); return nil }

type gateDevices struct{}

func (gateDevices) Class(string) (telemetry.Class, bool) { return telemetry.ClassTruck, true }

// heldStore commits each record when its release channel is closed.
type heldStore struct {
	releases []chan struct{}
	errs     []error
}

type heldWaiter struct {
	c   chan struct{}
	err *error
}

func (w heldWaiter) Done() <-chan struct{} { return w.c }
func (w heldWaiter) Wait() error           { <-w.c; return *w.err }

func (s *heldStore) Submit([]byte) ingest.Waiter {
	c := make(chan struct{})
	s.releases = append(s.releases, c)
	s.errs = append(s.errs, nil)
	return heldWaiter{c: c, err: &s.errs[len(s.errs)-1]}
}

func puback(id uint16) []byte { return []byte{0x40, 2, byte(id >> 8), byte(id)} }

func TestGatedConnHoldsPubacksUntilDurable(t *testing.T) {
	st := &heldStore{errs: make([]error, 0, 16)}
	in, err := ingest.New(ingest.Options{Devices: gateDevices{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingConn{writes: make(chan []byte, 16), closed: make(chan struct{})}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	g := &gatedConn{Conn: rc, refused: refused, acks: newAckers(1, prometheus.NewCounter(prometheus.CounterOpts{Name: "s"})).assign()}
	msg := func(seq int) []byte {
		return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":1,"lon":2,"speed_kmh":0,"heading":0,"sats":5,"valid":true}`, time.Now().UnixMilli(), seq)
	}
	// Four messages in flight on one connection, as mochi would handle them.
	for i := uint16(1); i <= 4; i++ {
		g.ack(i, in.Begin("T1", "trucks/T1/gps", msg(int(i))))
	}
	g.Write([]byte{0xd0, 0}) // a PINGRESP must stay behind the held PUBACKs
	select {
	case w := <-rc.writes:
		t.Fatalf("wrote %x before any commit", w)
	default:
	}
	close(st.releases[0])
	if w := <-rc.writes; string(w) != string(puback(1)) {
		t.Fatalf("first write %x, want PUBACK 1", w)
	}
	// Commits 2 and 3 complete together: their PUBACKs go in one write.
	close(st.releases[2])
	close(st.releases[1])
	waitWrite(t, rc, append(puback(2), puback(3)...), "PUBACKs 2 and 3, in order, in one write")
	// Commit 4 fails: its PUBACK and the PINGRESP are dropped, the
	// connection closed, so the device resends message 4.
	st.errs[3] = errors.New("spool full")
	close(st.releases[3])
	select {
	case <-rc.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed after a refused commit")
	}
	select {
	case w := <-rc.writes:
		t.Fatalf("wrote %x after the refused commit", w)
	default:
	}
	if _, err := g.Write(puback(5)); err == nil {
		t.Error("write after failure succeeded")
	}
	if got := testutil.ToFloat64(refused); got != 1 {
		t.Errorf("refused = %v", got)
	}
	if in.Accepted() != 3 {
		t.Errorf("accepted %d, want 3", in.Accepted())
	}
}

// TestListenerCloseAvoidsMochiClientClose pins the shutdown path: mochi's
// closeListenerClients takes its client map's read lock twice and deadlocks
// against a connection taking the write lock in between (seen with 5,000
// devices disconnecting during shutdown in BenchmarkIngestEndToEnd); the
// listener must use the broker's single-snapshot closeClients instead.
func TestListenerCloseAvoidsMochiClientClose(t *testing.T) {
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := tcp.Init(nil); err != nil {
		t.Fatal(err)
	}
	var ours string
	l := gatedTCP{TCP: tcp, closeClients: func(id string) { ours = id }}
	l.Close(func(string) { t.Error("mochi's closeListenerClients was used") })
	if ours != "t" {
		t.Errorf("closeClients called for %q, want the listener t", ours)
	}
}

// groupStore puts every record submitted until release into one commit, as
// the spool's group commit does.
type groupStore struct{ c chan struct{} }

func (s *groupStore) Submit([]byte) ingest.Waiter {
	var ok error
	return heldWaiter{c: s.c, err: &ok}
}

// TestAckerWritesAGroupToEveryConnection has connections on one acker shard
// share a group commit: nothing is written before it completes, then each
// connection gets exactly its own PUBACKs, in order, in one write.
func TestAckerWritesAGroupToEveryConnection(t *testing.T) {
	st := &groupStore{c: make(chan struct{})}
	in, err := ingest.New(ingest.Options{Devices: gateDevices{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	acks := newAckers(1, prometheus.NewCounter(prometheus.CounterOpts{Name: "s"}))
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	var conns []*recordingConn
	var gates []*gatedConn
	for range 3 {
		rc := &recordingConn{writes: make(chan []byte, 16), closed: make(chan struct{})}
		conns = append(conns, rc)
		gates = append(gates, &gatedConn{Conn: rc, refused: refused, acks: acks.assign()})
	}
	seq := 0
	for round := uint16(1); round <= 2; round++ {
		for i, g := range gates {
			seq++
			dev := fmt.Sprintf("T%d", i)
			g.ack(round*10+uint16(i), in.Begin(dev, "trucks/"+dev+"/gps", fmt.Appendf(nil,
				`{"ts":%d,"seq":%d,"lat":1,"lon":2,"speed_kmh":0,"heading":0,"sats":5,"valid":true}`, time.Now().UnixMilli(), seq)))
		}
	}
	for i, rc := range conns {
		select {
		case w := <-rc.writes:
			t.Fatalf("connection %d: wrote %x before the commit", i, w)
		default:
		}
	}
	close(st.c)
	for i, rc := range conns {
		want := append(puback(10+uint16(i)), puback(20+uint16(i))...)
		select {
		case w := <-rc.writes:
			if string(w) != string(want) {
				t.Errorf("connection %d: wrote %x, want %x", i, w, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d: no PUBACKs after the commit", i)
		}
	}
	if in.Accepted() != 6 {
		t.Errorf("accepted %d, want 6", in.Accepted())
	}
}

// switchStore puts each record into the commit cur is at when it is
// submitted; a test closes commits in any order.
type switchStore struct{ cur chan struct{} }

func (s *switchStore) Submit([]byte) ingest.Waiter {
	var ok error
	return heldWaiter{c: s.cur, err: &ok}
}

// closeWatch is a connection that reports its Close.
type closeWatch struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *closeWatch) Close() error { c.once.Do(func() { close(c.closed) }); return c.Conn.Close() }

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (srv, dev net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dev, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); dev.Close() })
	return srv, dev
}

// acker returns a switchStore, an ingester over it and one acker shard, as
// the tests of the acker share them.
func acker(t *testing.T) (*switchStore, *ingest.Ingester, *ackers, prometheus.Counter) {
	t.Helper()
	st := &switchStore{}
	in, err := ingest.New(ingest.Options{Devices: gateDevices{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return st, in, newAckers(1, prometheus.NewCounter(prometheus.CounterOpts{Name: "s"})),
		prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

func gpsMessage(seq int) []byte {
	return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":1,"lon":2,"speed_kmh":0,"heading":0,"sats":5,"valid":true}`, time.Now().UnixMilli(), seq)
}

func waitWrite(t *testing.T, rc *recordingConn, want []byte, what string) {
	t.Helper()
	select {
	case w := <-rc.writes:
		if string(w) != string(want) {
			t.Fatalf("%s: wrote %x, want %x", what, w, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing written", what)
	}
}

// TestAckerOutOfOrderCommitsAcrossConnections has records that complete out
// of order, one waiter each, as in cluster mode: a connection whose record is
// durable gets its PUBACK while another connection's earlier record is still
// pending.
func TestAckerOutOfOrderCommitsAcrossConnections(t *testing.T) {
	st, in, acks, refused := acker(t)
	a := &recordingConn{writes: make(chan []byte, 4), closed: make(chan struct{})}
	b := &recordingConn{writes: make(chan []byte, 4), closed: make(chan struct{})}
	ga := &gatedConn{Conn: a, refused: refused, acks: acks.assign()}
	gb := &gatedConn{Conn: b, refused: refused, acks: acks.assign()}
	first, second := make(chan struct{}), make(chan struct{})
	st.cur = first
	ga.ack(1, in.Begin("TA", "trucks/TA/gps", gpsMessage(1)))
	st.cur = second
	gb.ack(2, in.Begin("TB", "trucks/TB/gps", gpsMessage(1)))
	close(second)
	waitWrite(t, b, puback(2), "connection B, its record durable")
	select {
	case w := <-a.writes:
		t.Fatalf("connection A wrote %x before its commit", w)
	default:
	}
	close(first)
	waitWrite(t, a, puback(1), "connection A")
}

// TestAckerFailedWriteDoesNotWaitForLaterCommits has connection A's socket
// break while A still has a record in a later commit: B's PUBACK from the
// completed commit must not wait for that later commit.
func TestAckerFailedWriteDoesNotWaitForLaterCommits(t *testing.T) {
	st, in, acks, refused := acker(t)
	srv, dev := tcpPair(t)
	dev.(*net.TCPConn).SetLinger(0)
	dev.Close() // reset: the server's next write fails
	raw, err := srv.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	a := &closeWatch{Conn: srv, closed: make(chan struct{})}
	b := &recordingConn{writes: make(chan []byte, 4), closed: make(chan struct{})}
	ga := &gatedConn{Conn: a, raw: raw, refused: refused, acks: acks.assign()}
	gb := &gatedConn{Conn: b, refused: refused, acks: acks.assign()}
	group1, group2 := make(chan struct{}), make(chan struct{})
	st.cur = group1
	ga.ack(1, in.Begin("TA", "trucks/TA/gps", gpsMessage(1)))
	gb.ack(3, in.Begin("TB", "trucks/TB/gps", gpsMessage(1)))
	st.cur = group2
	ga.ack(2, in.Begin("TA", "trucks/TA/gps", gpsMessage(2)))
	close(group1)
	waitWrite(t, b, puback(3), "connection B")
	select {
	case <-a.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection A not closed after its write failed")
	}
	close(group2)
}

// TestAckerDoesNotWaitForADeviceThatDoesNotRead has a device that publishes
// and never reads its socket, so its PUBACKs fill the socket buffers; another
// connection drained by the same acker must still get its PUBACK at once, and
// the first device gets every PUBACK, in order, once it reads.
func TestAckerDoesNotWaitForADeviceThatDoesNotRead(t *testing.T) {
	srv, dev := tcpPair(t)
	srv.(*net.TCPConn).SetWriteBuffer(4096)
	dev.(*net.TCPConn).SetReadBuffer(4096)
	raw, err := srv.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	st, in, acks, refused := acker(t)
	st.cur = make(chan struct{})
	ga := &gatedConn{Conn: srv, raw: raw, refused: refused, acks: acks.assign()}
	other := &recordingConn{writes: make(chan []byte, 4), closed: make(chan struct{})}
	gb := &gatedConn{Conn: other, refused: refused, acks: acks.assign()}
	const n = 20000 // 80 kB of PUBACKs, far more than the socket buffers hold
	for i := 1; i <= n; i++ {
		ga.ack(uint16(i), in.Begin("TA", "trucks/TA/gps", gpsMessage(i)))
	}
	gb.ack(7, in.Begin("TB", "trucks/TB/gps", gpsMessage(1)))
	close(st.cur)
	waitWrite(t, other, puback(7), "the connection behind the one that does not read")
	dev.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 4*n)
	if _, err := io.ReadFull(dev, got); err != nil {
		t.Fatalf("reading the PUBACKs: %v", err)
	}
	for i := 1; i <= n; i++ {
		if w := got[4*(i-1) : 4*i]; string(w) != string(puback(uint16(i))) {
			t.Fatalf("PUBACK %d on the wire is %x, want %x", i, w, puback(uint16(i)))
		}
	}
}
