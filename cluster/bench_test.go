package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/internal/citytest"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// BenchmarkLogStore is the cluster's ingest path: records handed to the
// ingest.Store adapter and acknowledged once a majority of a 3-node
// JetStream cluster (R3, file storage, on this machine's loopback) has
// them, by devices each keeping inflight records unacknowledged (as an
// ingest node keeps a device's PUBACKs). One op is one acknowledged record;
// msg/s is the figure, and the cluster, the clients and the benchmark share
// the machine's cores.
func BenchmarkLogStore(b *testing.B) {
	for _, c := range []struct{ devices, inflight int }{{100, 1}, {100, 16}} {
		b.Run(fmt.Sprintf("devices=%d/inflight=%d", c.devices, c.inflight), func(b *testing.B) {
			nc := testenv.StartNATSCluster(b, 3)
			conn, err := nats.Connect(nc.URLs(), nats.MaxReconnects(-1))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			js, err := jetstream.New(conn, jetstream.WithPublishAsyncMaxPending(4096))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			log, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Stream: "BENCH", Replicas: 3})
			if err != nil {
				b.Fatal(err)
			}
			st := log.Store(30 * time.Second)
			var next atomic.Int64
			var failed atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for d := range c.devices {
				wg.Go(func() {
					dev := fmt.Sprintf("WF-T%05d", d)
					var seq uint64
					for {
						var batch []interface{ Wait() error }
						for range c.inflight {
							if next.Add(1) > int64(b.N) {
								break
							}
							seq++
							rec := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: dev, Seq: seq,
								TS: time.Unix(1_700_000_000+int64(seq), 0), Received: time.Now()},
								Fix: telemetry.Fix{Lat: 36.7, Lon: 119.1, SpeedKmh: 30, Sats: 10, Valid: true}}
							batch = append(batch, st.Submit(rec.AppendBinary(nil)))
						}
						for _, w := range batch {
							if w.Wait() != nil {
								failed.Add(1)
							}
						}
						if len(batch) < c.inflight {
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records not acknowledged", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkClusterRules is the rules workers' throughput: b.N records of
// a city of trucks (citytest: a trip each, half of them with an uncovered
// load) are in a 64-partition R3 stream before the timer starts; then W
// workers, each on its own connection, take the partitions and evaluate
// every record (reading the partition, the engine, publishing alerts and
// trips, checkpointing each second). One op is one record evaluated. The
// three NATS servers, the workers and the benchmark share the machine's
// cores, so the 1 → 3 workers ratio is what more workers buy when the
// cores are already busy, not what three machines would give.
func BenchmarkClusterRules(b *testing.B) {
	nc := testenv.StartNATSCluster(b, 3)
	for run, workers := range []int{1, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			trucks := b.N/500 + 1 // a truck makes about 570 records
			_, city, err := citytest.Load(trucks)
			if err != nil {
				b.Fatal(err)
			}
			recs := citytest.Records(trucks, time.Now().Add(-time.Hour).Truncate(time.Second))[:b.N]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			suffix := fmt.Sprintf("%d_%d", run, b.N)
			open := func() (*nats.Conn, *cluster.Log, *cluster.States, *cluster.Output, *cluster.Leases) {
				conn, err := nats.Connect(nc.URLs(), nats.MaxReconnects(-1))
				if err != nil {
					b.Fatal(err)
				}
				js, err := jetstream.New(conn, jetstream.WithPublishAsyncMaxPending(4096))
				if err != nil {
					b.Fatal(err)
				}
				log, err := cluster.OpenLog(ctx, js, cluster.LogOptions{Stream: "BR_" + suffix, Key: cluster.CityKeys(city)})
				if err != nil {
					b.Fatal(err)
				}
				states, err := cluster.OpenStates(ctx, js, "br_state_"+suffix, 3)
				if err != nil {
					b.Fatal(err)
				}
				out, err := cluster.OpenOutput(ctx, js, cluster.OutputOptions{Stream: "BR_OUT_" + suffix})
				if err != nil {
					b.Fatal(err)
				}
				leases, err := cluster.OpenLeases(ctx, js, cluster.LeaseOptions{Bucket: "br_leases_" + suffix, TTL: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				return conn, log, states, out, leases
			}
			// Streams share subjects: clear what an earlier run left.
			{
				conn, err := nats.Connect(nc.URLs())
				if err != nil {
					b.Fatal(err)
				}
				js, _ := jetstream.New(conn)
				names := js.StreamNames(ctx)
				var old []string
				for n := range names.Name() {
					old = append(old, n)
				}
				for _, n := range old {
					if err := js.DeleteStream(ctx, n); err != nil {
						b.Fatal(err)
					}
				}
				conn.Close()
			}
			conn, log, _, _, leases := open()
			defer conn.Close()
			st := log.Store(time.Minute)
			var ws []interface{ Wait() error }
			for i := range recs {
				ws = append(ws, st.Submit(recs[i].AppendBinary(nil)))
				if len(ws) == 2048 || i == len(recs)-1 {
					for _, w := range ws {
						if err := w.Wait(); err != nil {
							b.Fatal(err)
						}
					}
					ws = ws[:0]
				}
			}
			for w := range workers {
				if err := leases.Heartbeat(ctx, fmt.Sprintf("w%d", w)); err != nil {
					b.Fatal(err)
				}
			}
			var seen atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			wctx, stop := context.WithCancel(ctx)
			for w := range workers {
				conn, log, states, out, leases := open()
				defer conn.Close()
				r, err := cluster.NewRules(cluster.RulesOptions{Log: log, States: states, Output: out, City: city,
					CheckpointEvery: time.Second, Observe: func(int, *telemetry.Record) { seen.Add(1) }})
				if err != nil {
					b.Fatal(err)
				}
				a := cluster.NewAssigner(cluster.AssignerOptions{ID: fmt.Sprintf("w%d", w), Partitions: log.Partitions(),
					Leases: leases, Run: r.Run})
				wg.Go(func() { a.Run(wctx) })
			}
			for seen.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			stop()
			wg.Wait()
		})
	}
}
