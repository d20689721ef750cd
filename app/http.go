package app

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/urbanwatch/urbanwatch/storage/spool"
)

// routes serves the operational endpoints:
//
//	/metrics  Prometheus metrics
//	/healthz  200 while the process serves HTTP
//	/api/…    the alert API, and /cap/… the CAP warnings (alerting.Manager.Handler)
//	/readyz   200 while devices' messages can be accepted (listeners up, spool
//	          below its ceiling, or in cluster mode connected to NATS); 503
//	          with the reason otherwise. InfluxDB being down does not make
//	          urbanwatch unready: the spool (or the stream) holds the data.
func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	if a.alerting != nil {
		h := a.alerting.Handler()
		mux.Handle("/api/", h)
		mux.Handle("/cap/", h)
	}
	if a.console != nil {
		mux.Handle("/", a.console.Handler())
	}
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{Registry: a.metrics}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		body := map[string]any{
			"mqtt":    a.MQTTAddr(),
			"influx":  a.influx,
			"running": a.ready.Load(),
		}
		var st spool.Stats
		if a.spool != nil {
			st = a.spool.Stats()
			body["spool_bytes"], body["spool_usage_ratio"] = st.Bytes, st.UsageRatio
		}
		nats := ""
		if a.node != nil {
			nats = a.node.nc.Status().String()
			body["nats"] = nats
		}
		code := http.StatusOK
		switch {
		case !a.ready.Load():
			code, body["reason"] = http.StatusServiceUnavailable, "starting or stopping"
		case st.UsageRatio >= 1:
			code, body["reason"] = http.StatusServiceUnavailable, "spool at its disk ceiling: InfluxDB is not draining it"
		case a.node != nil && nats != "CONNECTED":
			code, body["reason"] = http.StatusServiceUnavailable, "not connected to NATS: records cannot be stored"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	return mux
}
