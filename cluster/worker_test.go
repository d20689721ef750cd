package cluster_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/citytest"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// worker is one rules worker on its own connection.
type worker struct {
	rules    *cluster.Rules
	assigner *cluster.Assigner
	cancel   context.CancelFunc
	done     chan struct{}
	close    func()
	reg      *prometheus.Registry
}

// counter is the value of counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

type clusterParts struct {
	log    *cluster.Log
	states *cluster.States
	out    *cluster.Output
	leases *cluster.Leases
}

func openParts(t *testing.T, ctx context.Context, js jetstream.JetStream, city *config.City, partitions int) clusterParts {
	t.Helper()
	var p clusterParts
	var err error
	if p.log, err = cluster.OpenLog(ctx, js, cluster.LogOptions{Partitions: partitions, Key: cluster.CityKeys(city)}); err != nil {
		t.Fatal(err)
	}
	if p.states, err = cluster.OpenStates(ctx, js, "", 0); err != nil {
		t.Fatal(err)
	}
	if p.out, err = cluster.OpenOutput(ctx, js, cluster.OutputOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.leases, err = cluster.OpenLeases(ctx, js, cluster.LeaseOptions{TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return p
}

func startWorker(t *testing.T, c *testenv.NATSCluster, id string, city *config.City, partitions int,
	every time.Duration, seen *atomic.Int64) *worker {
	t.Helper()
	nc, js := connect(t, c)
	ctx := context.Background()
	p := openParts(t, ctx, js, city, partitions)
	reg := prometheus.NewRegistry()
	r, err := cluster.NewRules(cluster.RulesOptions{Log: p.log, States: p.states, Output: p.out, City: city, Registerer: reg,
		CheckpointEvery: every, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Str("worker", id).Logger(),
		Observe: func(int, *telemetry.Record) { seen.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	a := cluster.NewAssigner(cluster.AssignerOptions{ID: id, Partitions: partitions, Leases: p.leases, Run: r.Run,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Str("worker", id).Logger()})
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{rules: r, assigner: a, cancel: cancel, done: make(chan struct{}), close: nc.Close, reg: reg}
	go func() {
		defer close(w.done)
		a.Run(wctx)
	}()
	t.Cleanup(func() { w.cancel(); <-w.done })
	return w
}

// outputIDs reads the whole output stream and returns its events' ids in
// order.
func outputIDs(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
	t.Helper()
	ids, err := citytest.EventIDs(ctx, js, cluster.DefaultOutputStream)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestWorkerTakeoverAnnouncesOnce: a worker that dies without a checkpoint
// (its connection cut, its leases left to expire) is replaced by two
// others, which replay its partitions from the start; the events it had
// published are recognised and not published again, and the output stream
// holds exactly the events one engine derives from the same records.
func TestWorkerTakeoverAnnouncesOnce(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	_, js := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const trucks, partitions = 12, 8
	_, city, err := citytest.Load(trucks)
	if err != nil {
		t.Fatal(err)
	}
	parts := openParts(t, ctx, js, city, partitions)
	recs := citytest.Records(trucks, time.Now().Add(-time.Hour).Truncate(time.Second))
	half := len(recs) / 2
	publish := func(recs []telemetry.Record) {
		for i := range recs {
			if _, err := parts.log.Publish(ctx, &recs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(recs[:half])

	// Worker a checkpoints only when its partitions start: all its work
	// since is replayed by its successors.
	var seenA, seenBC atomic.Int64
	a := startWorker(t, c, "a", city, partitions, time.Hour, &seenA)
	testenv.WaitFor(t, 30*time.Second, func() bool { return seenA.Load() >= int64(half) }, "worker a evaluating the first half")
	// Let a's events reach the stream, then cut it off.
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(outputIDs(t, ctx, js)) >= trucks/2 }, "worker a's alerts published")
	announcedByA := len(outputIDs(t, ctx, js))
	a.close()

	b := startWorker(t, c, "b", city, partitions, 500*time.Millisecond, &seenBC)
	cw := startWorker(t, c, "c", city, partitions, 500*time.Millisecond, &seenBC)
	publish(recs[half:])
	testenv.WaitFor(t, 60*time.Second, func() bool { return seenBC.Load() >= int64(len(recs)) }, "workers b and c evaluating every record")

	want, _, err := citytest.Replay(ctx, js, parts.log.Stream(), city)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(outputIDs(t, ctx, js)) >= len(want) }, "every event published")
	got := outputIDs(t, ctx, js)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("output stream holds\n%v\nwant (one engine over the same records)\n%v", got, want)
	}
	if len(want) < trucks*2 {
		t.Errorf("only %d events; the city should raise at least %d", len(want), trucks*2)
	}
	suppressed := counter(t, b.reg, "urbanwatch_cluster_rules_suppressed_total") +
		counter(t, cw.reg, "urbanwatch_cluster_rules_suppressed_total")
	t.Logf("%d records, %d events; worker a published %d, its successors suppressed %v", len(recs), len(want), announcedByA, suppressed)
	if announcedByA == 0 || suppressed < float64(announcedByA) {
		t.Errorf("worker a published %d events; its successors suppressed %v of them on replay", announcedByA, suppressed)
	}
}
