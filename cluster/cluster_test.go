package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// connect opens a client that fails over between the cluster's nodes.
func connect(t *testing.T, c *testenv.NATSCluster) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.Timeout(time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

func record(device string, seq uint64) *telemetry.Record {
	return &telemetry.Record{
		Kind: telemetry.KindGPS,
		Header: telemetry.Header{Device: device, Seq: seq,
			TS:       time.Unix(1_700_000_000+int64(seq), 0).UTC(),
			Received: time.Unix(1_700_000_000+int64(seq), 0).UTC()},
		Fix: telemetry.Fix{Lat: 36.7, Lon: 119.1},
	}
}

// readAll reads every partition from the start until want records are seen
// and returns how often each MsgID was read.
func readAll(t *testing.T, log *cluster.Log, want int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	total := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for p := range log.Partitions() {
		wg.Go(func() {
			err := log.ReadPartition(ctx, p, 0, func(seq uint64, rec *telemetry.Record) error {
				if got := cluster.Partition(rec.Device, log.Partitions()); got != p {
					return fmt.Errorf("record of %s (partition %d) read from partition %d", rec.Device, got, p)
				}
				mu.Lock()
				seen[cluster.MsgID(rec)]++
				total++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("read partition %d: %v", p, err)
			}
		})
	}
	testenv.WaitFor(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= want
	}, "reading back every record")
	// Anything beyond want (a duplicate) arrives with the rest; give it a
	// moment to show.
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return seen
}

// A record acknowledged by Publish is in the stream exactly once, though the
// stream leader was killed (kill -9) mid-stream and publishes were retried.
func TestPublishSurvivesNodeKill(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	_, js := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	log, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}

	const devices, perDevice = 40, 60
	var killOnce sync.Once
	var acked sync.Map
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			dev := fmt.Sprintf("truck-%03d.x", d) // a '.' in the id, as the registry allows
			for s := range uint64(perDevice) {
				if d == 0 && s == perDevice/3 {
					killOnce.Do(func() {
						st, err := js.Stream(ctx, log.Stream())
						if err != nil {
							t.Errorf("stream: %v", err)
							return
						}
						leader := st.CachedInfo().Cluster.Leader
						t.Logf("killing the stream leader %s", leader)
						c.Kill(c.Index(leader))
					})
				}
				rec := record(dev, s+1)
				if _, err := log.Publish(ctx, rec); err != nil {
					t.Errorf("publish %s: %v", cluster.MsgID(rec), err)
					return
				}
				acked.Store(cluster.MsgID(rec), true)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Send a few again, as an ingest node that lost the ack would: stored once.
	for d := range 5 {
		ack, err := log.Publish(ctx, record(fmt.Sprintf("truck-%03d.x", d), 1))
		if err != nil || !ack.Duplicate {
			t.Errorf("resend: ack %+v, err %v; want a duplicate", ack, err)
		}
	}
	seen := readAll(t, log, devices*perDevice)
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if seen[k.(string)] != 1 {
			t.Errorf("%s read %d times, want 1", k, seen[k.(string)])
		}
		return true
	})
	if len(seen) != n || n != devices*perDevice {
		t.Errorf("read %d distinct records, acknowledged %d, published %d", len(seen), n, devices*perDevice)
	}
}

// The ingest.Store adapter acknowledges after JetStream, and a record
// submitted twice is stored once.
func TestStoreAdapter(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	_, js := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	st := log.Store(5 * time.Second)
	for s := range uint64(50) {
		enc := record("gauge-7", s+1).AppendBinary(nil)
		if err := st.Submit(enc).Wait(); err != nil {
			t.Fatalf("submit %d: %v", s+1, err)
		}
		if s%10 == 0 {
			if err := st.Submit(enc).Wait(); err != nil {
				t.Fatalf("resubmit %d: %v", s+1, err)
			}
		}
	}
	if last, err := log.LastSeq(ctx); err != nil || last != 50 {
		t.Fatalf("last seq %d (%v), want 50: a resubmission was stored twice", last, err)
	}
	seen := readAll(t, log, 50)
	if len(seen) != 50 {
		t.Errorf("read %d records, want 50", len(seen))
	}
}

// A lease is exclusive, expires when not renewed, and a later holder's
// token fences the earlier holder's state writes.
func TestLeaseAndFencing(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	_, js := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := cluster.OpenLeases(ctx, js, cluster.LeaseOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	states, err := cluster.OpenStates(ctx, js, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ls.Acquire(ctx, 3, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Acquire(ctx, 3, "b"); !errors.Is(err, cluster.ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	if err := ls.Renew(ctx, a); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := states.Save(ctx, a, 10, []byte("a@10")); err != nil {
		t.Fatalf("save: %v", err)
	}
	// a stops renewing (a pause, a partition from the cluster); b takes over.
	var b *cluster.Lease
	testenv.WaitFor(t, 10*time.Second, func() bool {
		b, err = ls.Acquire(ctx, 3, "b")
		return err == nil
	}, "the unrenewed lease to expire")
	if b.Token <= a.Token {
		t.Fatalf("token %d after %d: fencing tokens must grow", b.Token, a.Token)
	}
	if err := ls.Renew(ctx, a); !errors.Is(err, cluster.ErrLost) {
		t.Fatalf("stale renew: %v, want ErrLost", err)
	}
	cp, err := states.Load(ctx, 3)
	if err != nil || cp.Seq != 10 || string(cp.Data) != "a@10" {
		t.Fatalf("load: %+v %v", cp, err)
	}
	if err := states.Save(ctx, b, 12, []byte("b@12")); err != nil {
		t.Fatalf("save b: %v", err)
	}
	if err := states.Save(ctx, a, 11, []byte("a@11")); !errors.Is(err, cluster.ErrFenced) {
		t.Fatalf("stale save: %v, want ErrFenced", err)
	}
	if owner, tok, err := ls.Holder(ctx, 3); err != nil || owner != "b" || tok != b.Token {
		t.Fatalf("holder %q token %d (%v), want b %d", owner, tok, err, b.Token)
	}
}
