package web

import (
	"math"
	"net/http"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// gaugeBoard is one gauge or depth point on the flood board
// (docs/console.md).
type gaugeBoard struct {
	Device     string              `json:"device"`
	Name       string              `json:"name"`
	District   string              `json:"district"`
	Kind       config.GaugeKind    `json:"kind"`
	Lat        float64             `json:"lat"`
	Lon        float64             `json:"lon"`
	LastTS     *time.Time          `json:"last_ts"`
	Totals     map[string]*float64 `json:"totals,omitempty"`
	Level      string              `json:"level,omitempty"`
	DepthCM    *float64            `json:"depth_cm,omitempty"`
	Trend      *float64            `json:"trend_cm_per_h,omitempty"`
	DepthLevel string              `json:"depth_level,omitempty"`
	WarnCM     float64             `json:"warn_cm,omitempty"`
	CloseCM    float64             `json:"close_cm,omitempty"`
	Series     [][2]*float64       `json:"series"`
}

// handleFlood serves the flood board: every rain gauge's 1/3/6/12/24 h
// totals and CMA level, every depth point's depth, trend and level, 24 h
// series, and the CAP warnings issued.
func (s *Server) handleFlood(w http.ResponseWriter, r *http.Request) {
	c := s.city.Load()
	now := s.now()
	var rain, depth map[string][]float64
	var histErr string
	if s.o.History != nil {
		var err error
		if rain, err = s.o.History.Buckets(r.Context(), telemetry.KindRain, "sum", now, time.Hour, 24); err == nil {
			depth, err = s.o.History.Buckets(r.Context(), telemetry.KindDepth, "max", now, 10*time.Minute, 144)
		}
		if err != nil {
			histErr = "stored history unavailable: " + err.Error()
			s.log.Warn().Err(err).Msg("console: flood board")
		}
	} else {
		histErr = "no stored history (InfluxDB not configured)"
	}
	gauges := make([]gaugeBoard, 0, len(c.Gauges))
	for _, g := range c.Gauges {
		b := gaugeBoard{Device: g.Device, Name: g.Name, District: g.District, Kind: g.Kind, Lat: g.Lat, Lon: g.Lon, Series: [][2]*float64{}}
		if v, ts, ok := s.fleet.gaugeNow(g.Device); ok {
			b.LastTS = &ts
			if g.Kind == config.GaugeDepth {
				b.DepthCM = ptr(round1(v))
			}
		}
		switch g.Kind {
		case config.GaugeRain:
			hours := rain[g.Device]
			b.Totals = map[string]*float64{}
			for _, h := range []int{1, 3, 6, 12, 24} {
				b.Totals[itoa(h)+"h"] = ptr(round1(sumLast(hours, h)))
			}
			b.Level = s.gaugeLevel(g.Device)
			b.Series = series(hours, now, time.Hour)
		case config.GaugeDepth:
			series10 := depth[g.Device]
			if b.DepthCM == nil {
				if v, ok := lastValue(series10); ok {
					b.DepthCM = ptr(round1(v))
				}
			}
			if tr, ok := trend(series10, 10*time.Minute, 3); ok {
				b.Trend = ptr(round1(tr))
			}
			b.DepthLevel = s.gaugeLevel(g.Device)
			b.WarnCM, b.CloseCM = g.WarnCM, g.CloseCM
			if b.WarnCM == 0 {
				b.WarnCM = c.Rules.Waterlogging.WarnCM
			}
			if b.CloseCM == 0 {
				b.CloseCM = c.Rules.Waterlogging.CloseCM
			}
			b.Series = series(series10, now, 10*time.Minute)
		}
		gauges = append(gauges, b)
	}
	type capRow struct {
		Identifier string    `json:"identifier"`
		MsgType    string    `json:"msg_type"`
		Sent       time.Time `json:"sent"`
		Headline   string    `json:"headline"`
		URL        string    `json:"url"`
		Alert      string    `json:"alert"`
	}
	caps := []capRow{}
	for _, m := range s.o.Alerts.CAPMessages(100) {
		caps = append(caps, capRow{m.Identifier, m.MsgType, m.Sent, m.Headline, capURL(m.Identifier), m.AlertID})
	}
	out := map[string]any{"gauges": gauges, "cap": caps, "generated_at": now}
	if histErr != "" {
		out["history_error"] = histErr
	}
	writeJSON(w, http.StatusOK, out)
}

func ptr[T any](v T) *T { return &v }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// sumLast sums the last n buckets, empty ones as zero.
func sumLast(b []float64, n int) float64 {
	var t float64
	for i := max(0, len(b)-n); i < len(b); i++ {
		if !math.IsNaN(b[i]) {
			t += b[i]
		}
	}
	return t
}

func lastValue(b []float64) (float64, bool) {
	for i := len(b) - 1; i >= 0; i-- {
		if !math.IsNaN(b[i]) {
			return b[i], true
		}
	}
	return 0, false
}

// trend is the change per hour over the last n buckets of width w (the
// first and last non-empty of them).
func trend(b []float64, w time.Duration, n int) (float64, bool) {
	first, last := -1, -1
	for i := max(0, len(b)-n); i < len(b); i++ {
		if math.IsNaN(b[i]) {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first < 0 || first == last {
		return 0, false
	}
	return (b[last] - b[first]) / (float64(last-first) * w.Hours()), true
}

// series pairs each bucket with its end time (unix seconds); empty
// buckets are null.
func series(b []float64, end time.Time, w time.Duration) [][2]*float64 {
	out := make([][2]*float64, 0, len(b))
	end = end.Truncate(time.Second)
	for i, v := range b {
		ts := float64(end.Add(-time.Duration(len(b)-1-i) * w).Unix())
		var val *float64
		if !math.IsNaN(v) {
			val = ptr(round1(v))
		}
		out = append(out, [2]*float64{&ts, val})
	}
	return out
}
