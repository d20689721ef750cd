package alerting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	notifications *prometheus.CounterVec
	retried       *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	escalations   *prometheus.CounterVec
	opened        *prometheus.CounterVec
	reopened      *prometheus.CounterVec
	duplicates    prometheus.Counter
}

func newMetrics(mg *Manager, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		notifications: f.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_notifications_total",
			Help: "Notifications settled, by channel (sms, cap), provider and result (sent, failed, suppressed)."},
			[]string{"channel", "provider", "result"}),
		retried: f.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_notification_retries_total",
			Help: "Failed notification attempts scheduled for another try, by channel and provider."},
			[]string{"channel", "provider"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{Name: "urbanwatch_notification_delay_seconds",
			Help:    "From deciding a notification to the gateway accepting it (quiet hours included), by channel.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 12 * 3600}},
			[]string{"channel"}),
		escalations: f.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_escalations_total",
			Help: "Alerts escalated to a tier because nobody acknowledged them in time, by rule and tier."},
			[]string{"rule", "tier"}),
		opened: f.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_alerts_opened_total",
			Help: "Alerts opened, by rule."}, []string{"rule"}),
		reopened: f.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_alerts_reopened_total",
			Help: "Alerts reopened because their condition returned within the flap window, by rule."}, []string{"rule"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_alert_events_duplicate_total",
			Help: "Rules events already applied (a replay after a restart), skipped."}),
	}
	reg.MustRegister(&stateCollector{mg: mg,
		alerts: prometheus.NewDesc("urbanwatch_alerts", "Alerts in the store, by rule and state.",
			[]string{"rule", "state"}, nil),
		depth: prometheus.NewDesc("urbanwatch_outbox_depth", "Notifications decided and not yet settled.", nil, nil),
		oldest: prometheus.NewDesc("urbanwatch_outbox_oldest_seconds",
			"Age of the oldest unsettled notification that is due (not held for quiet hours); 0 when none.", nil, nil),
	})
	return m
}

func (m *metrics) finished(ch Channel, provider string, st NotifyState) {
	m.notifications.WithLabelValues(string(ch), provider, string(st)).Inc()
}

// stateCollector reads the store at scrape time.
type stateCollector struct {
	mg                    *Manager
	alerts, depth, oldest *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.alerts
	ch <- c.depth
	ch <- c.oldest
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	mg := c.mg
	mg.mu.Lock()
	now := mg.now()
	type key struct{ rule, state string }
	counts := map[key]int{}
	for _, a := range mg.alerts {
		counts[key{ruleTemplate(a.Rule), string(a.State)}]++
	}
	depth, oldest := 0, 0.0
	for nid, aid := range mg.outbox {
		n := mg.alerts[aid].notification(nid)
		if n == nil || n.State != NotifyPending {
			continue
		}
		depth++
		if n.NotBefore.After(n.DecidedAt) && n.NotBefore.After(now) && n.Attempts == 0 {
			continue // held for quiet hours: waiting as asked
		}
		oldest = max(oldest, now.Sub(n.DecidedAt).Seconds())
	}
	mg.mu.Unlock()
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.GaugeValue, float64(v), k.rule, k.state)
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
}
