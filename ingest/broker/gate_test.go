package broker

import (
	"errors"
	"fmt"
	"net"
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
	g := &gatedConn{Conn: rc, refused: refused, acks: newAckers(1).assign()}
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
	deadline := time.After(5 * time.Second)
	var got []byte
	for len(got) < 8 {
		select {
		case w := <-rc.writes:
			got = append(got, w...)
		case <-deadline:
			t.Fatalf("PUBACKs 2 and 3 not written: %x", got)
		}
	}
	if string(got) != string(append(puback(2), puback(3)...)) {
		t.Fatalf("got %x, want PUBACK 2 then 3", got)
	}
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
	acks := newAckers(1)
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
