package simulators

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// metrics are the simulator's Prometheus series.
type metrics struct {
	published       [telemetry.KindDepth + 1]prometheus.Counter // by Kind
	publishErrors   prometheus.Counter
	connected       prometheus.Gauge
	connectFailures prometheus.Counter
}

// newMetrics makes the series and registers them with reg (if not nil). A
// second Run on the same registerer shares the already registered series.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	pub := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "urbanwatch_sim_published_total",
		Help: "Messages the simulated devices published and the broker acknowledged (QoS 1), by kind.",
	}, []string{"kind"})
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "urbanwatch_sim_publish_errors_total",
		Help: "Publishes that failed (the MQTT client reported an error).",
	})
	conn := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "urbanwatch_sim_connected_devices",
		Help: "Simulated devices with an open MQTT connection.",
	})
	fails := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "urbanwatch_sim_connect_failures_total",
		Help: "Failed initial connection attempts (each is retried with backoff).",
	})
	if reg != nil {
		var err error
		if pub, err = register(reg, pub); err != nil {
			return nil, err
		}
		if errs, err = register(reg, errs); err != nil {
			return nil, err
		}
		if conn, err = register(reg, conn); err != nil {
			return nil, err
		}
		if fails, err = register(reg, fails); err != nil {
			return nil, err
		}
	}
	m := &metrics{publishErrors: errs, connected: conn, connectFailures: fails}
	for _, k := range telemetry.Kinds {
		m.published[k] = pub.WithLabelValues(k.String())
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("simulators: register metrics: %w", err)
}
