package spool

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the urbanwatch_spool_* collectors of one Spool.
type metrics struct {
	bytes           prometheus.Gauge
	segments        prometheus.Gauge
	usage           prometheus.Gauge
	appendedRecords prometheus.Counter
	appendedBytes   prometheus.Counter
	commitSeconds   prometheus.Histogram
	commitRecords   prometheus.Histogram
	rejectedFull    prometheus.Counter
	truncated       prometheus.Counter
	corrupt         prometheus.Counter
	lag             *prometheus.GaugeVec
}

func newMetrics() *metrics {
	const ns, sub = "urbanwatch", "spool"
	return &metrics{
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "bytes",
			Help: "Size of all spool segment files."}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "segments",
			Help: "Number of spool segment files."}),
		usage: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "usage_ratio",
			Help: "Spool bytes as a fraction of the configured ceiling."}),
		appendedRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "appended_records_total",
			Help: "Records durably appended."}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "appended_bytes_total",
			Help: "Payload bytes durably appended."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_seconds",
			Help:    "Latency of one group commit (write and fsync).",
			Buckets: prometheus.ExponentialBucketsRange(50e-6, 1, 15)}),
		commitRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_records",
			Help:    "Records per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15)}),
		rejectedFull: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_full_total",
			Help: "Records refused because the spool was at its ceiling."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "truncated_bytes_total",
			Help: "Bytes of torn segment tails cut off at open."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "corrupt_records_total",
			Help: "Corrupt regions skipped (and saved under corrupt/) while reading segments."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_bytes",
			Help: "Record bytes committed but not yet acked, per cursor."}, []string{"cursor"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.bytes, m.segments, m.usage, m.appendedRecords, m.appendedBytes,
		m.commitSeconds, m.commitRecords, m.rejectedFull, m.truncated, m.corrupt, m.lag}
}

// register registers every collector on reg (nil: nowhere), undoing partial
// registration on failure.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	cs := m.collectors()
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("spool: register metrics (another open Spool uses this registry?): %w", err)
			}
			return fmt.Errorf("spool: register metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}
