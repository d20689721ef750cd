package rules

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// metrics are the engine's Prometheus series.
type metrics struct {
	records      map[telemetry.Kind]prometheus.Counter
	skipped      *prometheus.CounterVec
	alerts       *prometheus.CounterVec
	firing       *prometheus.GaugeVec
	subjects     *prometheus.GaugeVec
	watermarkLag prometheus.Gauge
	trips        prometheus.Counter
	glitches     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	recs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_rules_records_total",
		Help: "Records evaluated by the rules engine, by kind."}, []string{"kind"})
	m := &metrics{
		records: map[telemetry.Kind]prometheus.Counter{},
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_rules_skipped_total",
			Help: "Records the rules did not evaluate, by reason (unbound_device, too_late, late, invalid_fix)."},
			[]string{"reason"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_rules_alert_events_total",
			Help: "Alert events emitted, by rule and state."}, []string{"rule", "state"}),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "urbanwatch_rules_firing",
			Help: "Alerts firing now, by rule."}, []string{"rule"}),
		subjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "urbanwatch_rules_subjects",
			Help: "Trucks and gauges with rule state."}, []string{"kind"}),
		watermarkLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "urbanwatch_rules_watermark_lag_seconds",
			Help: "Wall clock minus the event-time watermark."}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_rules_trips_total",
			Help: "Trips finished (loaded from a site, unloaded)."}),
		glitches: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_rules_load_glitches_total",
			Help: "Load drops at speed that recovered within the spillage window: sensor glitches, not spills."}),
	}
	for _, k := range telemetry.Kinds {
		m.records[k] = recs.WithLabelValues(k.String())
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{recs, m.skipped, m.alerts, m.firing, m.subjects, m.watermarkLag, m.trips, m.glitches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rules: register metrics: %w", err)
		}
	}
	return m, nil
}
