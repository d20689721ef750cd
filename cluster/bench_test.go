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
