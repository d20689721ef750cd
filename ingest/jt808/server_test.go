package jt808

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// memStore is an ingest.Store that is durable at once, or fails.
type memStore struct {
	mu   sync.Mutex
	recs []telemetry.Record
	fail atomic.Bool
}

type doneWaiter struct{ err error }

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (w doneWaiter) Wait() error           { return w.err }
func (w doneWaiter) Done() <-chan struct{} { return closed }

func (s *memStore) Submit(p []byte) ingest.Waiter {
	if s.fail.Load() {
		return doneWaiter{errors.New("spool full")}
	}
	var r telemetry.Record
	if err := r.UnmarshalBinary(p); err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
	return doneWaiter{}
}

func (s *memStore) records() []telemetry.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]telemetry.Record(nil), s.recs...)
}

// deadBox is a DeadLetters that remembers reasons.
type deadBox struct {
	mu      sync.Mutex
	reasons []ingest.Reason
}

func (d *deadBox) Put(_ time.Time, reason ingest.Reason, _, _, _ string, _ []byte) {
	d.mu.Lock()
	d.reasons = append(d.reasons, reason)
	d.mu.Unlock()
}

func (d *deadBox) count(r ingest.Reason) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, x := range d.reasons {
		if x == r {
			n++
		}
	}
	return n
}

// testRegistry: T1 (code in the registry, default profile), T2 (only a
// hash of its code, status-bit profile), and a fleet of two.
const testRegistry = `
devices:
  - id: T1
    class: trucks
    jt808: {phone: "013800000001", auth_code: code-of-T1}
  - id: T2
    class: trucks
    jt808: {phone: "13800000002", auth_code_hash: "%s", profile: bits}
fleets:
  - prefix: F
    class: trucks
    count: 2
    width: 1
    key: fleet-key-0123456789
    jt808: {phone_prefix: "0139"}
`

type rig struct {
	s     *Server
	store *memStore
	dead  *deadBox
	reg   *config.Registry
	now   time.Time
}

func newRig(t *testing.T, mod func(*Options)) *rig {
	t.Helper()
	reg, err := config.ParseRegistry("registry.yaml", []byte(fmtRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{store: &memStore{}, dead: &deadBox{}, reg: reg, now: time.Date(2026, 11, 24, 22, 10, 30, 0, chinaTime)}
	in, err := ingest.New(ingest.Options{Devices: reg, Store: r.store, Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	bit22, bit23 := Source{Kind: FromStatus, ID: 22}, Source{Kind: FromStatus, ID: 23}
	o := Options{Addr: "127.0.0.1:0", Terminals: reg, Ingest: in, DeadLetters: r.dead,
		Profiles:   map[string]Profile{"bits": {Cover: bit22, Body: bit23, LoadStateKg: &[3]float64{0, 9000, 18000}}},
		Registerer: prometheus.NewRegistry()}
	if mod != nil {
		mod(&o)
	}
	r.s, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.s.Close() })
	return r
}

var t2Hash = config.HashSecret("code-of-T2")

func fmtRegistry() string { return sprintf(testRegistry, t2Hash) }

// term is a terminal for tests.
type term struct {
	t      *testing.T
	c      net.Conn
	fr     *frameReader
	phone  string
	v      Version
	serial uint16
}

func dial(t *testing.T, r *rig, phone string, v Version) *term {
	t.Helper()
	c, err := net.Dial("tcp", r.s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &term{t: t, c: c, fr: newFrameReader(c, 4096), phone: phone, v: v}
}

func (m *term) send(id uint16, body []byte) uint16 {
	m.t.Helper()
	m.serial++
	m.write(frame(Header{MsgID: id, Version: m.v, Phone: m.phone, Serial: m.serial}, body))
	return m.serial
}

func (m *term) write(b []byte) {
	m.t.Helper()
	if _, err := m.c.Write(b); err != nil {
		m.t.Fatal(err)
	}
}

func (m *term) recv() *Frame {
	m.t.Helper()
	m.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := m.fr.next()
	if err != nil {
		m.t.Fatalf("read reply: %v", err)
	}
	f, err := DecodeFrame(raw)
	if err != nil {
		m.t.Fatal(err)
	}
	if f.Version != m.v || NormalizePhone(f.Phone) != NormalizePhone(m.phone) {
		m.t.Fatalf("reply header %+v to terminal %s (%s)", f.Header, m.phone, m.v)
	}
	return f
}

// call sends a message and returns the result of its 0x8001.
func (m *term) call(id uint16, body []byte) byte {
	m.t.Helper()
	sn := m.send(id, body)
	return m.reply(sn, id)
}

func (m *term) reply(sn, id uint16) byte {
	m.t.Helper()
	f := m.recv()
	if f.MsgID != MsgPlatformReply {
		m.t.Fatalf("reply 0x%04X, want 0x8001", f.MsgID)
	}
	pr, err := ParsePlatformReply(f.Body)
	if err != nil || pr.Serial != sn || pr.MsgID != id {
		m.t.Fatalf("reply %+v %v, want to serial %d id 0x%04X", pr, err, sn, id)
	}
	return pr.Result
}

func (m *term) register() RegisterReply {
	m.t.Helper()
	sn := m.send(MsgRegister, AppendRegister(nil, Register{Province: 37, City: 700, Maker: "UWSIM", Model: "T", TerminalID: "1"}, m.v))
	f := m.recv()
	rr, err := ParseRegisterReply(f.Body)
	if f.MsgID != MsgRegisterReply || err != nil || rr.Serial != sn {
		m.t.Fatalf("registration reply 0x%04X %+v %v", f.MsgID, rr, err)
	}
	return rr
}

func (m *term) closedByServer() bool {
	m.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := m.fr.next()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func loc(at time.Time, extras ...Extra) []byte {
	return AppendLocation(nil, &Location{Status: StatusPositioned, Lat: 36.706512, Lon: 119.161734, SpeedKmh: 32.5,
		Heading: 271, Time: at, Extras: append([]Extra{{ID: 0x31, Data: []byte{11}}}, extras...)})
}

var (
	coverOpen  = Extra{ID: 0xE1, Data: []byte{1}}
	bodyDown   = Extra{ID: 0xE2, Data: []byte{0}}
	load18500  = Extra{ID: 0xE3, Data: []byte{0, 0, 0x48, 0x44}}
	defaultSet = []Extra{coverOpen, bodyDown, load18500}
)

func TestSession(t *testing.T) {
	for _, v := range []Version{V2013, V2019} {
		t.Run(v.String(), func(t *testing.T) {
			r := newRig(t, nil)
			m := dial(t, r, "013800000001", v)
			if m.call(MsgHeartbeat, nil) != ResultOK {
				t.Fatal("heartbeat not acknowledged")
			}
			at := r.now.Add(-20 * time.Second)
			if m.call(MsgLocation, loc(at, defaultSet...)) != ResultFailure {
				t.Fatal("a location before authentication was accepted")
			}
			// Registration never hands out the code (anyone can name a
			// phone): the terminal authenticates with its provisioned one.
			if rr := m.register(); rr.Result != RegisterTerminalTaken || rr.AuthCode != "" {
				t.Fatalf("registration %+v", rr)
			}
			if m.call(MsgAuthenticate, AppendAuth(nil, "wrong", v)) != ResultFailure {
				t.Fatal("a wrong code authenticated")
			}
			if m.call(MsgAuthenticate, AppendAuth(nil, "code-of-T1", v)) != ResultOK {
				t.Fatal("the right code was refused")
			}
			if m.call(MsgLocation, loc(at, defaultSet...)) != ResultOK {
				t.Fatal("location refused")
			}
			recs := r.store.records()
			if len(recs) != 2 {
				t.Fatalf("%d records, want gps and sensors", len(recs))
			}
			g, s := recs[0], recs[1]
			if g.Device != "T1" || g.Kind != telemetry.KindGPS || g.Seq != uint64(at.Unix()) || !g.TS.Equal(at) ||
				g.Fix != (telemetry.Fix{Lat: 36.706512, Lon: 119.161734, SpeedKmh: 32.5, Heading: 271, Sats: 11, Valid: true}) {
				t.Fatalf("gps %+v", g)
			}
			if s.Kind != telemetry.KindSensors || s.Seq != g.Seq ||
				s.Sensors != (telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyDown, LoadKg: 18500, HasLoad: true}) {
				t.Fatalf("sensors %+v", s)
			}
			// Sent again (its reply lost): acknowledged, not stored twice.
			if m.call(MsgLocation, loc(at, defaultSet...)) != ResultOK || len(r.store.records()) != 2 {
				t.Fatalf("redelivery: %d records", len(r.store.records()))
			}
			// A blind-area batch: three older fixes, one reply.
			var items []Location
			for i := 1; i <= 3; i++ {
				l, _ := ParseLocation(loc(at.Add(-time.Duration(i)*time.Second), coverOpen, bodyDown))
				items = append(items, l)
			}
			if m.call(MsgBatchLocation, AppendBatch(nil, 1, items)) != ResultOK {
				t.Fatal("batch refused")
			}
			recs = r.store.records()
			if len(recs) != 8 || !recs[2].Late || recs[3].Sensors.HasLoad {
				t.Fatalf("%d records after the batch (late %v)", len(recs), recs[2].Late)
			}
			// A report that breaks the wire contract: speed 300 km/h.
			bad := AppendLocation(nil, &Location{Status: StatusPositioned, Lat: 36.7, Lon: 119.1, SpeedKmh: 300, Time: at.Add(time.Second)})
			if m.call(MsgLocation, bad) != ResultBadMessage {
				t.Fatal("an out-of-range report was not answered as a bad message")
			}
			// A body that does not parse.
			if m.call(MsgLocation, []byte{1, 2, 3}) != ResultBadMessage || r.dead.count("jt808_bad_body") != 1 {
				t.Fatal("a short location body was not refused")
			}
			if m.call(0x0900, []byte{1}) != ResultUnsupported {
				t.Fatal("an unknown message id was not answered unsupported")
			}
			m.serial++
			m.write(frame(Header{MsgID: MsgLocation, Version: v, Phone: m.phone, Serial: m.serial, Encryption: 1}, loc(at)))
			if m.reply(m.serial, MsgLocation) != ResultUnsupported || r.dead.count("jt808_encrypted") != 1 {
				t.Fatal("an encrypted report was not refused as unsupported")
			}
			// A frame with a bad check code gets no reply: the next reply
			// is the heartbeat's.
			broken := frame(Header{MsgID: MsgLocation, Version: v, Phone: m.phone, Serial: 999}, loc(at))
			broken[len(broken)-2] ^= 0x55
			if broken[len(broken)-2] == flag || broken[len(broken)-2] == escape {
				broken[len(broken)-2] ^= 0x01
			}
			m.write(broken)
			if m.call(MsgHeartbeat, nil) != ResultOK {
				t.Fatal("heartbeat after a bad frame")
			}
			if got := testutil.ToFloat64(r.s.rejected.WithLabelValues(ReasonChecksum)); got != 1 || r.dead.count("jt808_checksum") != 1 {
				t.Fatalf("checksum rejects %v", got)
			}
			// Deregistered, it may not report.
			if m.call(MsgDeregister, nil) != ResultOK || m.call(MsgLocation, loc(at.Add(2*time.Second))) != ResultFailure {
				t.Fatal("a deregistered terminal reported")
			}
			if got := testutil.ToFloat64(r.s.authFailed.WithLabelValues(authNotAuthenticated)); got != 2 {
				t.Fatalf("not_authenticated failures %v, want 2", got)
			}
			if got := testutil.ToFloat64(r.s.authFailed.WithLabelValues(authBadCode)); got != 1 {
				t.Fatalf("bad_code failures %v, want 1", got)
			}
			if got := testutil.ToFloat64(r.s.frames.WithLabelValues("0x0200")); got != 7 {
				t.Fatalf("0x0200 frames %v, want 7 (the one with a bad check code is not decoded)", got)
			}
		})
	}
}

func TestIdentities(t *testing.T) {
	r := newRig(t, nil)
	// Unknown phone.
	m := dial(t, r, "13999999999", V2013)
	if rr := m.register(); rr.Result != RegisterUnknownTerminal {
		t.Fatalf("unknown phone registered: %+v", rr)
	}
	if m.call(MsgAuthenticate, AppendAuth(nil, "x", V2013)) != ResultFailure {
		t.Fatal("unknown phone authenticated")
	}
	if got := testutil.ToFloat64(r.s.authFailed.WithLabelValues(authUnknownPhone)); got != 2 {
		t.Fatalf("unknown_phone %v", got)
	}
	// Hash only: registration cannot hand the code out; the provisioned
	// code authenticates; the status-bit profile maps the report.
	m = dial(t, r, "00000000013800000002", V2019)
	if rr := m.register(); rr.Result != RegisterTerminalTaken || rr.AuthCode != "" {
		t.Fatalf("hash-only registration %+v", rr)
	}
	if m.call(MsgAuthenticate, AppendAuth(nil, "", V2019)) != ResultFailure {
		t.Fatal("an empty code authenticated")
	}
	if m.call(MsgAuthenticate, AppendAuth(nil, "code-of-T2", V2019)) != ResultOK {
		t.Fatal("T2 refused")
	}
	at := r.now.Add(-time.Minute)
	body := AppendLocation(nil, &Location{Status: StatusPositioned | 1<<22 | 3<<8, Lat: 36.7, Lon: 119.1, Time: at})
	if m.call(MsgLocation, body) != ResultOK {
		t.Fatal("T2 report refused")
	}
	recs := r.store.records()
	if len(recs) != 2 || recs[1].Device != "T2" ||
		recs[1].Sensors != (telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyDown, LoadKg: 18000, HasLoad: true}) {
		t.Fatalf("T2 records %+v", recs)
	}
	// Another phone on an authenticated connection is refused.
	m.phone = "13800000001"
	if m.call(MsgLocation, loc(at)) != ResultFailure {
		t.Fatal("a second phone reported on T2's connection")
	}
	// A fleet terminal: phone and code derived from the fleet.
	m = dial(t, r, "013900000002", V2013)
	rr := m.register()
	code, _ := r.reg.JT808AuthCode("F2")
	if rr.Result != RegisterTerminalTaken || rr.AuthCode != "" || m.call(MsgAuthenticate, AppendAuth(nil, code, V2013)) != ResultOK {
		t.Fatalf("fleet terminal: %+v", rr)
	}
	// Five wrong codes close the connection.
	m = dial(t, r, "013800000001", V2013)
	for range maxAuthFails {
		if m.call(MsgAuthenticate, AppendAuth(nil, "guess", V2013)) != ResultFailure {
			t.Fatal("a guess authenticated")
		}
	}
	if !m.closedByServer() {
		t.Fatal("connection open after 5 failed authentications")
	}
}

func TestSpoolUnavailable(t *testing.T) {
	r := newRig(t, nil)
	m := dial(t, r, "013800000001", V2013)
	m.call(MsgAuthenticate, AppendAuth(nil, "code-of-T1", V2013))
	r.store.fail.Store(true)
	if m.call(MsgLocation, loc(r.now.Add(-time.Second), defaultSet...)) != ResultFailure {
		t.Fatal("an unstored report was not answered as a failure")
	}
	if !m.closedByServer() {
		t.Fatal("connection kept open after the spool refused a report")
	}
}

func TestSubPackagedBatchOverTCP(t *testing.T) {
	r := newRig(t, nil)
	m := dial(t, r, "013800000001", V2013)
	m.call(MsgAuthenticate, AppendAuth(nil, "code-of-T1", V2013))
	var items []Location
	for i := range 60 {
		l, _ := ParseLocation(loc(r.now.Add(-time.Duration(100-i)*time.Second), defaultSet...))
		items = append(items, l)
	}
	body := AppendBatch(nil, 1, items) // 60 × 45 + 3 = 2,703 bytes: three packages
	const size = 1000
	total := uint16((len(body) + size - 1) / size)
	var serials []uint16
	for i := uint16(0); i < total; i++ {
		m.serial++
		serials = append(serials, m.serial)
		part := body[int(i)*size : min(int(i+1)*size, len(body))]
		m.write(frame(Header{MsgID: MsgBatchLocation, Phone: m.phone, Serial: m.serial, SubPackage: true, Total: total, Index: i + 1}, part))
	}
	for _, sn := range serials {
		if m.reply(sn, MsgBatchLocation) != ResultOK {
			t.Fatal("package not acknowledged")
		}
	}
	if n := len(r.store.records()); n != 120 {
		t.Fatalf("%d records from 60 points", n)
	}
}

func TestConnectionLimits(t *testing.T) {
	r := newRig(t, func(o *Options) { o.MaxConnections = 1; o.IdleTimeout = 300 * time.Millisecond })
	first := dial(t, r, "013800000001", V2013)
	if first.call(MsgHeartbeat, nil) != ResultOK {
		t.Fatal("heartbeat")
	}
	second := dial(t, r, "013800000002", V2013)
	if !second.closedByServer() {
		t.Fatal("a connection over max_connections was kept")
	}
	if testutil.ToFloat64(r.s.refused) != 1 {
		t.Fatal("refused connection not counted")
	}
	if !first.closedByServer() {
		t.Fatal("an idle connection was kept past idle_timeout")
	}
	// Garbage and runs of bad frames close a connection; others go on.
	deadline := time.Now().Add(5 * time.Second)
	for r.s.active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	junk := dial(t, r, "1", V2013)
	junk.write(make([]byte, 5000))
	if !junk.closedByServer() {
		t.Fatal("a connection sending garbage was kept")
	}
	for r.s.active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	bad := dial(t, r, "1", V2013)
	for range maxBadRun {
		bad.write([]byte{flag, 1, 2, 3, flag})
	}
	if !bad.closedByServer() {
		t.Fatal("a connection sending only bad frames was kept")
	}
}

func TestRecordsJSON(t *testing.T) {
	// What ingest receives is the documented wire contract.
	var got []string
	in := ingestFunc(func(identity, topic string, payload []byte) *ingest.Pending {
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		got = append(got, topic+" "+string(payload))
		return nil
	})
	c := &conn{s: &Server{o: Options{Ingest: in}}, device: "T1"}
	p := DefaultProfile()
	l, _ := ParseLocation(loc(time.Date(2026, 11, 24, 22, 10, 5, 0, chinaTime), defaultSet...))
	g, s, _ := p.Records(&l)
	c.begin(&g)
	c.begin(&s)
	want := []string{
		`trucks/T1/gps {"ts":1795529405000,"seq":1795529405,"lat":36.706512,"lon":119.161734,"speed_kmh":32.5,"heading":271.0,"sats":11,"valid":true}`,
		`trucks/T1/sensors {"ts":1795529405000,"seq":1795529405,"cover":"open","body":"down","load_kg":18500}`,
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

type ingestFunc func(identity, topic string, payload []byte) *ingest.Pending

func (f ingestFunc) Begin(identity, topic string, payload []byte) *ingest.Pending {
	return f(identity, topic, payload)
}

// TestGatewayShutsOutProbes: registration tells nobody a code, probing
// phone numbers closes the connection, no sub-package is taken before
// authentication, and a connection that never authenticates is closed.
func TestGatewayShutsOutProbes(t *testing.T) {
	r := newRig(t, func(o *Options) { o.AuthTimeout = 300 * time.Millisecond })
	// Probing unknown phones: each counts as a failed authentication.
	m := dial(t, r, "013700000001", V2013)
	for range maxAuthFails {
		if rr := m.register(); rr.Result != RegisterUnknownTerminal || rr.AuthCode != "" {
			t.Fatalf("unknown phone: %+v", rr)
		}
	}
	if !m.closedByServer() {
		t.Fatal("a connection probing phone numbers stayed open")
	}
	// A sub-package before authentication is refused and holds nothing.
	m = dial(t, r, "013800000001", V2013)
	m.serial++
	m.write(frame(Header{MsgID: MsgBatchLocation, Version: V2013, Phone: m.phone, Serial: m.serial,
		SubPackage: true, Total: 2, Index: 1}, []byte{0, 1, 0}))
	if got := m.reply(m.serial, MsgBatchLocation); got != ResultFailure {
		t.Fatalf("sub-package before authentication: result %d", got)
	}
	// Heartbeats alone do not keep an unauthenticated connection open.
	if m.call(MsgHeartbeat, nil) != ResultOK {
		t.Fatal("heartbeat")
	}
	if !m.closedByServer() {
		t.Fatal("a connection that never authenticated stayed open past AuthTimeout")
	}
}
