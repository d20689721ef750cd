package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

type delivery struct {
	worker      string
	p           int
	seq, loaded uint64
}

// Two workers split the partitions; one dies without a goodbye (its
// connection drops, its leases are left to expire); the survivor takes its
// partitions and resumes each from the checkpoint the dead one saved.
func TestPartitionsMoveOnWorkerDeath(t *testing.T) {
	const P = 8
	c := testenv.StartNATSCluster(t, 3)
	_, js := connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	log, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Partitions: P})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []delivery
	saved := map[string]map[int]uint64{} // worker → partition → last saved seq

	startWorker := func(id string) (*cluster.Assigner, func()) {
		nc, js := connect(t, c)
		ls, err := cluster.OpenLeases(ctx, js, cluster.LeaseOptions{TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		states, err := cluster.OpenStates(ctx, js, "", 3)
		if err != nil {
			t.Fatal(err)
		}
		wlog, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Partitions: P})
		if err != nil {
			t.Fatal(err)
		}
		save := func(ctx context.Context, l *cluster.Lease, seq uint64) error {
			if err := states.Save(ctx, l, seq, nil); err != nil {
				return err
			}
			mu.Lock()
			if saved[id] == nil {
				saved[id] = map[int]uint64{}
			}
			saved[id][l.Partition] = seq
			mu.Unlock()
			return nil
		}
		run := func(ctx context.Context, l *cluster.Lease) error {
			cp, err := states.Load(ctx, l.Partition)
			if err != nil {
				return err
			}
			last, n := cp.Seq, 0
			err = wlog.ReadPartition(ctx, l.Partition, cp.Seq+1, func(seq uint64, _ *telemetry.Record) error {
				mu.Lock()
				got = append(got, delivery{worker: id, p: l.Partition, seq: seq, loaded: cp.Seq})
				mu.Unlock()
				last, n = seq, n+1
				if n%25 == 0 {
					return save(ctx, l, last)
				}
				return nil
			})
			if err != nil {
				return err
			}
			// Handoff (or loss): save where we are; fencing refuses it if
			// the lease has passed on.
			sctx, scancel := context.WithTimeout(context.Background(), time.Second)
			defer scancel()
			if last > cp.Seq {
				_ = save(sctx, l, last)
			}
			return nil
		}
		a := cluster.NewAssigner(cluster.AssignerOptions{ID: id, Partitions: P, Leases: ls, Run: run,
			Tick: 200 * time.Millisecond})
		actx, acancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		kill := func() { nc.Close(); acancel(); <-done }
		t.Cleanup(kill)
		return a, kill
	}

	a, killA := startWorker("worker-a")
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(a.Owned()) == P }, "worker-a to own every partition")
	b, _ := startWorker("worker-b")
	testenv.WaitFor(t, 10*time.Second, func() bool {
		oa, ob := a.Owned(), b.Owned()
		return len(oa) > 0 && len(ob) > 0 && len(oa)+len(ob) == P && !slices.ContainsFunc(oa, func(p int) bool { return slices.Contains(ob, p) })
	}, "the two workers to split the partitions")
	ownedA := a.Owned()
	t.Logf("worker-a owns %v, worker-b owns %v", ownedA, b.Owned())

	partOf := map[uint64]int{}
	publish := func(from, to uint64) {
		for s := from; s < to; s++ {
			for d := range 20 {
				rec := record(fmt.Sprintf("truck-%02d", d), s)
				ack, err := log.Publish(ctx, rec)
				if err != nil {
					t.Fatalf("publish: %v", err)
				}
				partOf[ack.Seq] = cluster.Partition(rec.Device, P)
			}
		}
	}
	processedAll := func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[uint64]bool{}
		for _, d := range got {
			seen[d.seq] = true
		}
		return len(seen) == len(partOf)
	}
	publish(1, 41) // 800 records
	testenv.WaitFor(t, 15*time.Second, processedAll, "the first records to be processed")
	publish(41, 61)
	killA() // mid-stream: a may be anywhere in these 400
	publish(61, 101)
	testenv.WaitFor(t, 20*time.Second, func() bool { return len(b.Owned()) == P && processedAll() },
		"worker-b to take every partition and process every record")

	mu.Lock()
	defer mu.Unlock()
	count := map[uint64]map[string]int{}
	firstB := map[int]delivery{}
	lastA := map[int]uint64{}
	for _, d := range got {
		if count[d.seq] == nil {
			count[d.seq] = map[string]int{}
		}
		count[d.seq][d.worker]++
		if d.p != partOf[d.seq] {
			t.Errorf("seq %d of partition %d delivered on partition %d", d.seq, partOf[d.seq], d.p)
		}
		if d.worker == "worker-b" && slices.Contains(ownedA, d.p) {
			if _, ok := firstB[d.p]; !ok {
				firstB[d.p] = d
			}
		}
		if d.worker == "worker-a" {
			lastA[d.p] = max(lastA[d.p], d.seq)
		}
	}
	for seq, by := range count {
		if by["worker-b"] > 1 || by["worker-a"] > 1 {
			t.Errorf("seq %d delivered %v: one worker saw it twice", seq, by)
		}
	}
	replayed := 0
	for _, p := range ownedA {
		f, ok := firstB[p]
		if !ok {
			t.Errorf("partition %d: worker-b never resumed it", p)
			continue
		}
		if f.loaded != saved["worker-a"][p] {
			t.Errorf("partition %d: worker-b loaded the checkpoint at %d, worker-a last saved %d", p, f.loaded, saved["worker-a"][p])
		}
		want := uint64(0)
		for seq, pp := range partOf {
			if pp == p && seq > f.loaded && (want == 0 || seq < want) {
				want = seq
			}
		}
		if f.seq != want {
			t.Errorf("partition %d: worker-b resumed at %d, want %d (first after checkpoint %d)", p, f.seq, want, f.loaded)
		}
		for seq, by := range count {
			if partOf[seq] == p && by["worker-a"] > 0 && by["worker-b"] > 0 {
				replayed++
				if seq <= f.loaded || seq > lastA[p] {
					t.Errorf("partition %d: seq %d seen by both, outside the replay window (%d, %d]", p, seq, f.loaded, lastA[p])
				}
			}
		}
	}
	t.Logf("%d records, %d replayed after the kill (the checkpoint-to-crash window the rules stage suppresses)", len(partOf), replayed)
}
