package spool

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func benchAppendParallel(b *testing.B, noSync bool) {
	for _, perCPU := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", perCPU), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), NoSync: noSync, MaxBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			payload := make([]byte, 100)
			b.SetBytes(int64(len(payload)))
			b.SetParallelism(perCPU)
			syncs0 := s.syncs.Load()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			groups := s.syncs.Load() - syncs0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(groups, 1)), "records/fsync")
		})
	}
}

// BenchmarkAppendParallel measures durable appends (real fdatasync) of
// 100-byte records from many goroutines sharing group commits.
func BenchmarkAppendParallel(b *testing.B) { benchAppendParallel(b, false) }

// BenchmarkAppendParallelNoSync is the same without fsync, to show its cost.
func BenchmarkAppendParallelNoSync(b *testing.B) { benchAppendParallel(b, true) }

// BenchmarkCursorNext measures drain throughput: Next batches of up to 1000
// 100-byte records, either acking every batch (durable checkpoint: fsync,
// rename, directory fsync) or not acking at all (pure read path).
func BenchmarkCursorNext(b *testing.B) {
	for _, ack := range []bool{true, false} {
		b.Run(fmt.Sprintf("ack=%v", ack), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			c, err := s.Cursor("bench")
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 100)
			var last *Commit
			for range b.N {
				last = s.Submit(payload)
			}
			if err := last.Wait(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; {
				batch, err := c.Next(ctx, 1000, 0)
				if err != nil {
					b.Fatal(err)
				}
				if ack {
					if err := c.Ack(batch); err != nil {
						b.Fatal(err)
					}
				}
				n += len(batch.Records)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
