package influx

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Failure reasons, the values of the reason label of
// urbanwatch_influx_write_failures_total. The set is closed so the label's
// cardinality stays bounded.
const (
	ReasonNetwork     = "network"      // connection refused, reset, DNS, ...
	ReasonTimeout     = "timeout"      // the per-write Timeout elapsed
	ReasonServerError = "server_error" // 5xx
	ReasonRateLimited = "rate_limited" // 429
	ReasonAuth        = "auth"         // 401, 403: configuration, retried
	ReasonNotFound    = "not_found"    // 404 (database missing): configuration, retried
	ReasonRejected    = "rejected"     // 400, 413 and other 4xx: data refused, not retried
)

// metrics are the writer's Prometheus collectors, all prefixed
// urbanwatch_influx_.
type metrics struct {
	writeSeconds  prometheus.Histogram
	writtenPoints prometheus.Counter
	failures      *prometheus.CounterVec
	batchPoints   prometheus.Histogram
	lastSuccess   prometheus.Gauge
	up            prometheus.Gauge
	undecodable   prometheus.Counter
	rejected      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "urbanwatch", "influx"
	m := &metrics{
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "write_seconds",
			Help:    "Duration of one write request to InfluxDB, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms .. ~60 s
		}),
		writtenPoints: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "written_points_total",
			Help: "Points InfluxDB accepted.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "write_failures_total",
			Help: "Failed write requests to InfluxDB, by reason (network, timeout, server_error, rate_limited, auth, not_found, rejected).",
		}, []string{"reason"}),
		batchPoints: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "batch_points",
			Help:    "Points per write request sent to InfluxDB.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 .. 16384
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds",
			Help: "Unix time of the last write InfluxDB accepted.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "up",
			Help: "1 if the last write request to InfluxDB succeeded, 0 if it failed or none was made yet.",
		}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "undecodable_records_total",
			Help: "Spool records that failed to decode; skipped and passed to the dead-letter callback.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected_records_total",
			Help: "Records InfluxDB refused permanently; passed to the dead-letter callback.",
		}),
	}
	// Pre-create every reason so rate() works from the first failure on.
	for _, r := range []string{ReasonNetwork, ReasonTimeout, ReasonServerError, ReasonRateLimited,
		ReasonAuth, ReasonNotFound, ReasonRejected} {
		m.failures.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.writeSeconds, m.writtenPoints, m.failures, m.batchPoints,
		m.lastSuccess, m.up, m.undecodable, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("influx: register metrics: %w", err)
		}
	}
	return m, nil
}
