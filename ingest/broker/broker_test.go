package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

const registryYAML = `
fleets:
  - prefix: T
    class: trucks
    count: 3
    width: 1
    key: test-fleet-key-0123456789
devices:
  - id: G1
    class: gauges
    secret_hash: %s
  - id: CERT1
    class: trucks
    cert_cn: terminal-cert-1.weifang
`

// store is an ingest.Store that keeps records and can hold or fail commits.
type store struct {
	mu      sync.Mutex
	records []telemetry.Record
	fail    error
	failIf  func() bool // when set and true, Submit fails like fail
	hold    chan struct{}
}

type waiter struct {
	err  error
	hold chan struct{}
}

func (w waiter) Done() <-chan struct{} {
	if w.hold != nil {
		return w.hold
	}
	c := make(chan struct{})
	close(c)
	return c
}

func (w waiter) Wait() error {
	if w.hold != nil {
		<-w.hold
	}
	return w.err
}

func (s *store) Submit(p []byte) ingest.Waiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return waiter{err: s.fail}
	}
	if s.failIf != nil && s.failIf() {
		return waiter{err: errors.New("spool full")}
	}
	var r telemetry.Record
	if err := r.UnmarshalBinary(p); err != nil {
		panic(err)
	}
	s.records = append(s.records, r)
	return waiter{hold: s.hold}
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

type fixture struct {
	b     *Broker
	reg   *config.Registry
	store *store
	in    *ingest.Ingester
	dead  *ingest.DeadLetters
	prom  *prometheus.Registry
	tls   *tls.Config // client TLS config trusting the server, with CERT1's certificate
	g1    string      // G1's secret
}

func newFixture(t *testing.T, withTLS bool) *fixture {
	t.Helper()
	f := &fixture{store: &store{}, prom: prometheus.NewRegistry(), g1: "gauge-secret-0123456789abcdef"}
	var err error
	f.reg, err = config.ParseRegistry("test.yaml", fmt.Appendf(nil, registryYAML, config.HashSecret(f.g1)))
	if err != nil {
		t.Fatal(err)
	}
	f.dead, err = ingest.OpenDeadLetters(ingest.DeadLetterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dead.Close() })
	f.in, err = ingest.New(ingest.Options{Devices: f.reg, Store: f.store, DeadLetters: f.dead, Registerer: f.prom})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{TCPAddr: "127.0.0.1:0", Devices: f.reg, Ingest: f.in, Registerer: f.prom, Logger: zerolog.Nop()}
	if withTLS {
		dir := t.TempDir()
		o.TLSAddr = "127.0.0.1:0"
		o.TLSCertFile, o.TLSKeyFile, o.ClientCAFile, f.tls = makePKI(t, dir)
	}
	f.b, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.b.Close() })
	return f
}

func (f *fixture) secret(id string) string {
	var s string
	f.reg.AllDevices(func(d *config.Device, secret string) {
		if d.ID == id {
			s = secret
		}
	})
	return s
}

func (f *fixture) connect(t *testing.T, user, pass string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID(user).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetProtocolVersion(4) // one attempt per connect: paho otherwise retries as MQTT 3.1
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func gpsPayload(seq int) []byte {
	return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`,
		time.Now().UnixMilli(), seq)
}

func TestPubackOnlyAfterDurable(t *testing.T) {
	f := newFixture(t, false)
	f.store.hold = make(chan struct{})
	c, err := f.connect(t, "T1", f.secret("T1"))
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Publish("trucks/T1/gps", 1, false, gpsPayload(1))
	testenv.WaitFor(t, 5*time.Second, func() bool { return f.store.count() == 1 }, "message reached the store")
	if tok.WaitTimeout(200 * time.Millisecond) {
		t.Fatal("PUBACK arrived before the store committed")
	}
	close(f.store.hold)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK after commit: %v", tok.Error())
	}
	if got := f.store.records[0]; got.Device != "T1" || got.Kind != telemetry.KindGPS || got.Seq != 1 {
		t.Fatalf("stored %+v", got)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, false)
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"T1", f.secret("T1"), true},
		{"G1", f.g1, true},
		{"T1", f.secret("T2"), false},
		{"T1", "", false},
		{"T9", "whatever", false},
		{"G1", "wrong", false},
		{"", "", false},
		{"CERT1", "", false}, // certificate-only device without a certificate
	} {
		_, err := f.connect(t, c.user, c.pass)
		if (err == nil) != c.ok {
			t.Errorf("%s/%q: connect err=%v, want ok=%v", c.user, c.pass, err, c.ok)
		}
	}
	if got := testutil.ToFloat64(f.b.authFailures); got != 6 {
		t.Errorf("auth_failures_total = %v, want 6", got)
	}
}

func TestACLRefusesPublishingAsAnotherDevice(t *testing.T) {
	f := newFixture(t, false)
	c, err := f.connect(t, "T1", f.secret("T1"))
	if err != nil {
		t.Fatal(err)
	}
	// MQTT 3.1.1 has no negative PUBACK: the refused message is acknowledged
	// (resending it would never help) but not stored.
	if tok := c.Publish("trucks/T2/gps", 1, false, gpsPayload(1)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK for the refused message: %v", tok.Error())
	}
	if tok := c.Publish("gauges/T1/rain", 1, false, []byte(`{}`)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if f.store.count() != 0 {
		t.Fatal("spoofed message was stored")
	}
	// The connection is still good for the device's own topics.
	if tok := c.Publish("trucks/T1/gps", 1, false, gpsPayload(1)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if f.store.count() != 1 {
		t.Fatalf("%d stored, want the one own message", f.store.count())
	}
	if got := testutil.ToFloat64(f.b.aclDenied.WithLabelValues("publish")); got != 1 {
		t.Errorf("acl_denied_total{publish} = %v, want 1 (the class mismatch is unknown_device)", got)
	}
	f.dead.Close()
	data, err := os.ReadFile(f.dead.Path())
	if err != nil || !strings.Contains(string(data), `"reason":"identity_mismatch"`) || !strings.Contains(string(data), `trucks/T2/gps`) ||
		!strings.Contains(string(data), `"payload":"{\"ts\"`) {
		t.Errorf("dead letters: %s %v", data, err)
	}
}

func TestClientIDMustBeTheDeviceID(t *testing.T) {
	f := newFixture(t, false)
	opts := paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID("T2"). // T2's session
												SetUsername("T1").SetPassword(f.secret("T1")).SetAutoReconnect(false).SetProtocolVersion(4)
	c := paho.NewClient(opts)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("T1 connected with T2's client id")
	}
}

func TestACLSubscriptions(t *testing.T) {
	f := newFixture(t, false)
	c, err := f.connect(t, "T1", f.secret("T1"))
	if err != nil {
		t.Fatal(err)
	}
	for filter, ok := range map[string]bool{"trucks/T1/cmd": true, "trucks/#": false, "trucks/T2/gps": false, "#": false} {
		tok := c.Subscribe(filter, 1, nil)
		tok.WaitTimeout(5 * time.Second)
		st := tok.(*paho.SubscribeToken)
		granted := st.Result()[filter] != 0x80
		if granted != ok {
			t.Errorf("subscribe %q granted=%v, want %v", filter, granted, ok)
		}
	}
}

func TestInvalidPayloadIsAckedAndDeadLettered(t *testing.T) {
	f := newFixture(t, false)
	c, err := f.connect(t, "T1", f.secret("T1"))
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Publish("trucks/T1/gps", 1, false, []byte(`{"ts":1,"seq":"x"}`))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK for an invalid message: %v", tok.Error())
	}
	if f.store.count() != 0 {
		t.Fatal("invalid message stored")
	}
	// Good traffic on the same connection carries on.
	if tok := c.Publish("trucks/T1/gps", 1, false, gpsPayload(2)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if f.store.count() != 1 {
		t.Fatal("good message after a bad one not stored")
	}
}

func TestSpoolRefusalClosesConnectionWithoutAck(t *testing.T) {
	f := newFixture(t, false)
	f.store.fail = errors.New("spool full")
	lost := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID("T1").
		SetUsername("T1").SetPassword(f.secret("T1")).SetAutoReconnect(false).
		SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Publish("trucks/T1/gps", 1, false, gpsPayload(1))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed when the spool refused the message")
	}
	if tok.WaitTimeout(100*time.Millisecond) && tok.Error() == nil {
		t.Fatal("message was acknowledged although the spool refused it")
	}
	if got := testutil.ToFloat64(f.b.notAcked); got != 1 {
		t.Errorf("unacked_disconnects_total = %v", got)
	}
}

func TestMosquittoClientsInterop(t *testing.T) {
	pub := testenv.Command(t, "mosquitto_pub")
	f := newFixture(t, false)
	host, port, _ := net.SplitHostPort(f.b.Addr())
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(pub, append([]string{"-h", host, "-p", port, "-q", "1", "-d"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-V", "mqttv311", "-i", "T2", "-u", "T2", "-P", f.secret("T2"), "-t", "trucks/T2/gps", "-m", string(gpsPayload(1)))
	run("-V", "mqttv5", "-i", "T3", "-u", "T3", "-P", f.secret("T3"), "-t", "trucks/T3/gps", "-m", string(gpsPayload(1)))
	if f.store.count() != 2 {
		t.Fatalf("%d records stored, want 2", f.store.count())
	}
	// MQTT 5 says why a message was refused, in the PUBACK reason code.
	out := run("-V", "mqttv5", "-i", "T3", "-u", "T3", "-P", f.secret("T3"), "-t", "trucks/T3/gps", "-m", `{"lat":1}`)
	if !strings.Contains(out, "rc:153") && !strings.Contains(out, "RC:153") && !strings.Contains(strings.ToLower(out), "payload format invalid") {
		t.Errorf("MQTT 5 PUBACK did not carry reason 0x99 (payload format invalid):\n%s", out)
	}
}

func TestTLSClientCertificateIdentifiesDevice(t *testing.T) {
	f := newFixture(t, true)
	opts := paho.NewClientOptions().AddBroker("ssl://" + f.b.TLSAddr()).SetClientID("CERT1").
		SetTLSConfig(f.tls).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect with certificate: %v", tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Publish("trucks/CERT1/gps", 1, false, gpsPayload(1))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if f.store.count() != 1 || f.store.records[0].Device != "CERT1" {
		t.Fatalf("stored %+v", f.store.records)
	}
}

// makePKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate with CN terminal-cert-1.weifang, and returns the server's files
// and a client TLS config.
func makePKI(t *testing.T, dir string) (certFile, keyFile, caFile string, client *tls.Config) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "urbanwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	certFile = writePEM("server.pem", "CERTIFICATE", srvDER)
	keyFile = writePEM("server.key", "EC PRIVATE KEY", srvKeyDER)
	caFile = writePEM("ca.pem", "CERTIFICATE", caDER)
	cliDER, cliKey := issue(3, "terminal-cert-1.weifang", x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}}}
	return
}

// TestCloseUnderConnectionChurn closes the broker while devices keep
// connecting. mochi's own listener shutdown can deadlock here (a nested read
// lock on its client map against a connection's write lock); Close must
// return.
func TestCloseUnderConnectionChurn(t *testing.T) {
	if raceEnabled {
		// mochi v2.7.9 itself races between Server.Close and a connection
		// being established (server.go:1499 against :401), which this test
		// provokes by design. `make test` runs it again without -race.
		t.Skip("SKIPPED UNDER -race: mochi's own Close/EstablishConnection race; make test runs this test without -race")
	}
	f := newFixture(t, false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", f.b.Addr())
				if err != nil {
					return // listener closed
				}
				// CONNECT T1 with a wrong secret: refused, so the session
				// is set up and torn down again, taking the map lock.
				c.Write([]byte{0x10, 0x18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 60, 0, 2, 'c', 'x', 0, 2, 'T', '1', 0, 4, 'n', 'o', 'p', 'e'})
				buf := make([]byte, 4)
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Read(buf)
				c.Close()
			}
		}()
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return testutil.ToFloat64(f.b.authFailures) > 200 }, "connection churn under way")
	closed := make(chan error, 1)
	go func() { closed <- f.b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broker Close hung under connection churn")
	}
	close(stop)
	wg.Wait()
}

// TestRefusedMessageIsResentAfterReconnect: when the spool refuses a record,
// the device gets no PUBACK — not on this connection, and not from the
// session on the next one — so it resends, and the message is stored.
func TestRefusedMessageIsResentAfterReconnect(t *testing.T) {
	f := newFixture(t, false)
	var failing atomic.Bool
	failing.Store(true)
	f.store.failIf = failing.Load
	opts := paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID("T1").
		SetUsername("T1").SetPassword(f.secret("T1")).SetProtocolVersion(4).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(100 * time.Millisecond)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	c.Publish("trucks/T1/gps", 1, false, gpsPayload(7))
	testenv.WaitFor(t, 5*time.Second, func() bool { return testutil.ToFloat64(f.b.notAcked) >= 1 }, "the refusal")
	if f.store.count() != 0 {
		t.Fatal("refused record counted as stored")
	}
	failing.Store(false)
	// paho resends the message from its session after reconnecting. (paho
	// completes the first token when the connection drops, so the token
	// says nothing; what counts is that the record arrives.)
	testenv.WaitFor(t, 10*time.Second, func() bool { return f.store.count() == 1 }, "the resent message stored")
	if got := f.store.records[0].Seq; got != 7 {
		t.Fatalf("stored seq %d, want 7", got)
	}
}
