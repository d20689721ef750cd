package ingest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// storeWithSwitch fails until ok is set.
type switchStore struct {
	memStore
	failing atomic.Bool
}

func (s *switchStore) Submit(p []byte) Waiter {
	if s.failing.Load() {
		return memWaiter{err: errors.New("spool full")}
	}
	return s.memStore.Submit(p)
}

// publishAll publishes seqs [from, from+n) as device, QoS 1.
func publishAll(t *testing.T, addr, device string, from, n int) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("dev-" + device).
		SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	now := time.Now()
	for i := from; i < from+n; i++ {
		p := fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`,
			now.Add(time.Duration(i)*time.Millisecond).UnixMilli(), i)
		if tok := c.Publish("trucks/"+device+"/gps", 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
}

// seqCount counts stored records per seq in [from, to).
func seqCount(t *testing.T, st *memStore, from, to int) (distinct int, dups int) {
	seen := map[uint64]int{}
	for _, r := range st.decoded(t) {
		if r.Seq >= uint64(from) && r.Seq < uint64(to) {
			seen[r.Seq]++
		}
	}
	for _, n := range seen {
		dups += n - 1
	}
	return len(seen), dups
}

func runClient(t *testing.T, in *Ingester, addr string, reg prometheus.Registerer) (*Client, context.CancelFunc) {
	t.Helper()
	c, err := NewClient(in, ClientOptions{URL: "tcp://" + addr, ClientID: "urbanwatch-test", MaxInflight: 16, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("client Run: %v", err)
		}
	}
	return c, stop
}

func TestExternalBrokerMosquitto(t *testing.T) {
	addr := testenv.StartMosquitto(t, "")
	st := &memStore{}
	in, err := New(Options{Devices: devices{"T1": telemetry.ClassTruck}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runClient(t, in, addr, nil)
	// Subscribe first, so the device's messages are queued for the session.
	testenv.WaitFor(t, 10*time.Second, func() bool {
		publishAll(t, addr, "T1", 0, 1)
		return len(st.decoded(t)) > 0
	}, "client subscribed and received a message")
	publishAll(t, addr, "T1", 1000, 200)
	testenv.WaitFor(t, 10*time.Second, func() bool { n, _ := seqCount(t, st, 1000, 1200); return n == 200 }, "200 messages ingested")
	stop()

	// While urbanwatch is down, the broker keeps the persistent session's
	// messages; they arrive when it comes back with the same client id.
	publishAll(t, addr, "T1", 2000, 50)
	_, stop = runClient(t, in, addr, nil)
	defer stop()
	testenv.WaitFor(t, 10*time.Second, func() bool { n, _ := seqCount(t, st, 2000, 2050); return n == 50 }, "messages sent while down delivered")
	if _, dups := seqCount(t, st, 1000, 2050); dups != 0 {
		t.Errorf("%d duplicates stored", dups)
	}
}

func TestExternalBrokerRedeliversWhatTheSpoolRefused(t *testing.T) {
	addr := testenv.StartMosquitto(t, "")
	st := &switchStore{}
	reg := prometheus.NewRegistry()
	in, err := New(Options{Devices: devices{"T1": telemetry.ClassTruck}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	c, stop := runClient(t, in, addr, reg)
	defer stop()
	testenv.WaitFor(t, 10*time.Second, func() bool {
		publishAll(t, addr, "T1", 0, 1)
		return len(st.decoded(t)) > 0
	}, "client subscribed")
	st.failing.Store(true)
	publishAll(t, addr, "T1", 100, 5)
	testenv.WaitFor(t, 10*time.Second, func() bool { return testutil.ToFloat64(c.notAcked) >= 1 }, "refusal noticed")
	st.failing.Store(false)
	testenv.WaitFor(t, 20*time.Second, func() bool { n, _ := seqCount(t, &st.memStore, 100, 105); return n == 5 }, "refused messages redelivered and stored")
	if _, dups := seqCount(t, &st.memStore, 100, 105); dups != 0 {
		t.Errorf("%d duplicates stored", dups)
	}
}

// TestDeployMosquittoACL runs Mosquitto with deploy/mosquitto's ACL file: a
// device can publish on its own topics only, so what urbanwatch reads in
// external mode can trust the topic's {device}.
func TestDeployMosquittoACL(t *testing.T) {
	passwd := testenv.Command(t, "mosquitto_passwd")
	dir := t.TempDir()
	pwfile := filepath.Join(dir, "passwd")
	for i, u := range [][2]string{{"urbanwatch-ingest", "ingest-secret"}, {"T1", "t1-secret"}, {"T2", "t2-secret"}} {
		args := []string{"-b", pwfile, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	acl, err := filepath.Abs("../deploy/mosquitto/urbanwatch.acl")
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.StartMosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s", pwfile, acl))
	st := &memStore{}
	in, err := New(Options{Devices: devices{"T1": telemetry.ClassTruck, "T2": telemetry.ClassTruck}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(in, ClientOptions{URL: "tcp://" + addr, Username: "urbanwatch-ingest", Password: "ingest-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	dev := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("T1").
		SetUsername("T1").SetPassword("t1-secret").SetProtocolVersion(4))
	if tok := dev.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer dev.Disconnect(50)
	pub := func(topic string, seq int) {
		p := fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`, time.Now().UnixMilli(), seq)
		if tok := dev.Publish(topic, 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	testenv.WaitFor(t, 10*time.Second, func() bool {
		pub("trucks/T1/gps", 0)
		return len(st.decoded(t)) > 0
	}, "urbanwatch subscribed through the ACL")
	pub("trucks/T2/gps", 500) // T1 posing as T2: Mosquitto drops it
	pub("trucks/T1/gps", 501) // delivered after the spoof would have been
	testenv.WaitFor(t, 10*time.Second, func() bool { n, _ := seqCount(t, st, 501, 502); return n == 1 }, "own message delivered")
	for _, r := range st.decoded(t) {
		if r.Device != "T1" || r.Seq == 500 {
			t.Fatalf("spoofed message got through the ACL: %+v", r)
		}
	}
}
