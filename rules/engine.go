package rules

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Sink receives the engine's alert events, in the order they happen. It is
// called from the goroutine that calls Process or Advance and must not keep
// the *Alert after it returns (copy what it needs). The alerting stage and
// the MQTT publisher implement it.
type Sink interface {
	Emit(a *telemetry.Alert)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(a *telemetry.Alert)

// Emit calls f(a).
func (f SinkFunc) Emit(a *telemetry.Alert) { f(a) }

// Options configures an Engine.
type Options struct {
	// City is the validated supervision model. Required.
	City *config.City
	// Sink receives alert events. Required.
	Sink Sink
	// Trips, if set, receives every finished trip (telemetry.Trip).
	Trips TripSink
	// Logger receives reloads and anomalies; the zero Logger discards.
	Logger zerolog.Logger
	// Registerer, if not nil, gets the urbanwatch_rules_* metrics.
	Registerer prometheus.Registerer
	// MaxAhead caps how far one message's timestamp may move the watermark
	// beyond the wall clock passed to Advance (live mode), so that a device
	// with a fast clock cannot make other subjects look silent. Zero means
	// 2s. Without Advance calls (replay) it does not apply.
	MaxAhead time.Duration
	// Owns, if set, limits the engine to the devices for which it returns
	// true: a gauge it does not own is never watched for silence. In
	// cluster mode each partition's engine owns its partition's devices
	// and is fed only their records; nil owns every device.
	Owns func(device string) bool
}

// Engine evaluates every rule over a stream of accepted records in event
// time. It is not safe for concurrent use: one goroutine calls Process,
// Advance, SetCity and Snapshot, which is what keeps it lock-free and fast.
//
// Time: each subject's messages are evaluated in device-timestamp order per
// stream; a message older than the newest of its stream by more than the
// reorder window is skipped by the rules (and counted). Durations are
// measured in event time. The watermark, against which silences and
// timeouts are judged, follows the devices' timestamps and, while nothing
// arrives, moves on by the wall-clock time Advance reports.
type Engine struct {
	o      Options
	log    zerolog.Logger
	met    *metrics
	m      *model
	trucks map[string]*truckState // by plate
	gauges map[string]*gaugeState // by device
	timers timerHeap

	wm       int64 // watermark, event-time Unix ns
	wall     int64 // wall clock at the last Advance, Unix ns; 0 = replay
	dataWM   int64 // watermark as last set by data
	dataWall int64 // wall clock when data last moved the watermark

	scratch []int32
	alert   telemetry.Alert
}

// New builds an engine for o.City.
func New(o Options) (*Engine, error) {
	if o.City == nil || o.Sink == nil {
		return nil, errors.New("rules: City and Sink are required")
	}
	if o.MaxAhead <= 0 {
		o.MaxAhead = 2 * time.Second
	}
	m, err := newModel(o.City)
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{o: o, log: o.Logger, met: met, m: m,
		trucks: map[string]*truckState{}, gauges: map[string]*gaugeState{}}
	return e, nil
}

// City returns the configuration in force.
func (e *Engine) City() *config.City { return e.m.city }

// SetCity swaps in a new validated configuration between two messages. The
// state of every truck and gauge that is still configured is kept, with its
// firing alerts; those no longer configured have their alerts resolved
// (details.reason "removed from configuration") and are forgotten.
func (e *Engine) SetCity(c *config.City) error {
	m, err := newModel(c)
	if err != nil {
		return err
	}
	old := e.m
	// Subjects that left: resolve their alerts under the old model, whose
	// indexes their state refers to.
	for plate, st := range e.trucks {
		if m.plates[plate] == nil {
			st.removed(e)
			delete(e.trucks, plate)
		}
	}
	for dev, g := range e.gauges {
		if m.gauges[dev] == nil {
			g.removed(e)
			delete(e.gauges, dev)
		}
	}
	// Subjects that stay: point at the new model, and move site and zone
	// indexes to the new positions of the same ids.
	for plate, st := range e.trucks {
		st.info = m.plates[plate]
		st.site = remapSite(old, m, st.site)
		st.lastSite = remapSite(old, m, st.lastSite)
		st.washSite = remapSite(old, m, st.washSite)
		if st.lon != 0 || st.lat != 0 {
			st.pos = m.plane.Project(st.lon, st.lat)
		}
		if tr := st.trip; tr != nil {
			tr.origin = remapSite(old, m, tr.origin)
			if tr.hasLast {
				tr.last = m.plane.Project(old.plane.Unproject(tr.last))
			}
		}
		for i := range st.visits {
			if st.visits[i].to == 0 {
				continue
			}
			if st.visits[i].site = remapSite(old, m, st.visits[i].site); st.visits[i].site < 0 {
				st.visits[i] = visit{}
			}
		}
		kept := st.zones[:0]
		for _, zc := range st.zones {
			oldZone := old.zone[zc.zone]
			k := m.zoneIndex(oldZone.ID)
			if k < 0 {
				st.resolve(e, "", RuleZoneViolation+":"+oldZone.ID, &zc.c, oldZone.Severity, e.wm,
					map[string]any{"zone": oldZone.ID, "reason": "zone removed from configuration"})
				continue
			}
			zc.zone = k
			kept = append(kept, zc)
		}
		st.zones = kept
	}
	for dev, g := range e.gauges {
		g.cfg = m.gauges[dev]
	}
	e.m = m
	e.watchGauges()
	e.met.subjects.WithLabelValues("truck").Set(float64(len(e.trucks)))
	e.met.subjects.WithLabelValues("gauge").Set(float64(len(e.gauges)))
	e.log.Info().Str("city", c.Path()).Int("trucks", len(c.Trucks)).Int("sites", len(c.Sites)).
		Int("zones", len(c.Zones)).Int("gauges", len(c.Gauges)).Msg("rules configuration applied")
	return nil
}

// remapSite moves a site index of the old model to the new one (-1 if the
// site is gone).
func remapSite(old, m *model, i int32) int32 {
	if i < 0 || int(i) >= len(old.site) {
		return -1
	}
	return m.siteIndex(old.site[i].ID)
}

// Watermark returns the engine's event-time watermark (zero before the
// first message or Advance).
func (e *Engine) Watermark() time.Time {
	if e.wm == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.wm)
}

// Process evaluates one accepted record.
func (e *Engine) Process(r *telemetry.Record) {
	ts := r.TS.UnixNano()
	e.observeTS(ts)
	e.met.records[r.Kind].Inc()
	switch r.Kind {
	case telemetry.KindGPS, telemetry.KindSensors:
		ti := e.m.trucks[r.Device]
		if ti == nil {
			e.met.skipped.WithLabelValues("unbound_device").Inc()
			return
		}
		st := e.trucks[ti.truck.Plate]
		if st == nil {
			st = newTruckState(ti)
			e.trucks[ti.truck.Plate] = st
			e.met.subjects.WithLabelValues("truck").Set(float64(len(e.trucks)))
		}
		if r.Kind == telemetry.KindGPS {
			st.onFix(e, r.Device, ts, &r.Fix)
		} else {
			st.onSensors(e, r.Device, ts, &r.Sensors)
		}
	case telemetry.KindRain, telemetry.KindDepth:
		g := e.gauge(r.Device)
		if g == nil {
			e.met.skipped.WithLabelValues("unbound_device").Inc()
			return
		}
		if r.Kind == telemetry.KindRain {
			g.onRain(e, ts, r.Rain)
		} else {
			g.onDepth(e, ts, r.Depth)
		}
	}
	e.runTimers()
}

// Advance tells the engine the wall clock. While no message moves the
// watermark, it moves on by the wall-clock time that passes, so that
// silences are noticed. Live processing calls it about once a second;
// replay never does (its watermark follows the data alone) until AdvanceTo
// closes the replayed range.
func (e *Engine) Advance(wall time.Time) {
	w := wall.UnixNano()
	e.wall = w
	if e.dataWall != 0 {
		if cand := e.dataWM + (w - e.dataWall); cand > e.wm {
			e.wm = cand
		}
	}
	if e.wm == 0 {
		e.setWM(w)
	}
	e.runTimers()
	e.met.watermarkLag.Set(float64(w-e.wm) / 1e9)
}

// AdvanceTo moves the watermark to t (never back) and fires every timer
// due by then: replay calls it at the end of the replayed range.
func (e *Engine) AdvanceTo(t time.Time) {
	if n := t.UnixNano(); n > e.wm {
		e.setWM(n)
	}
	e.runTimers()
}

// observeTS moves the watermark with a message's event time, capped in live
// mode at the wall clock plus MaxAhead.
func (e *Engine) observeTS(ts int64) {
	if e.wall != 0 {
		if lim := e.wall + int64(e.o.MaxAhead); ts > lim {
			ts = lim
		}
	}
	if ts > e.wm {
		e.setWM(ts)
		e.dataWM, e.dataWall = ts, e.wall
	}
}

func (e *Engine) setWM(ts int64) {
	first := e.wm == 0
	e.wm = ts
	if first {
		e.watchGauges()
	}
}

// watchGauges starts the silence clock of every configured gauge that has
// no state yet, so a gauge that never reports is noticed too.
func (e *Engine) watchGauges() {
	if e.wm == 0 {
		return
	}
	for dev := range e.m.gauges {
		if e.o.Owns == nil || e.o.Owns(dev) {
			e.gauge(dev)
		}
	}
}

// gauge returns the state of a configured gauge, creating it.
func (e *Engine) gauge(dev string) *gaugeState {
	g := e.gauges[dev]
	if g != nil {
		return g
	}
	cfg := e.m.gauges[dev]
	if cfg == nil {
		return nil
	}
	g = &gaugeState{cfg: cfg, lastTS: e.wm}
	e.gauges[dev] = g
	e.met.subjects.WithLabelValues("gauge").Set(float64(len(e.gauges)))
	g.schedule(e)
	return g
}

// emit hands one alert event to the sink. key is the rule id, or for a zone
// "zone_violation:<zone id>" so that each zone's alert has its own ID.
// details is owned by the event.
func (e *Engine) emit(key string, state telemetry.AlertState, version int32, severity string,
	subj telemetry.Subject, started, ts int64, loc telemetry.Location, details map[string]any) {
	rule := ruleID(key)
	a := &e.alert
	*a = telemetry.Alert{
		ID: telemetry.AlertID(key, subj.ID, time.Unix(0, started)), Rule: rule, State: state,
		Version: int(version), Severity: severity, Subject: subj,
		StartedAt: time.Unix(0, started).UTC(), TS: time.Unix(0, ts).UTC(), Location: loc, Details: details,
	}
	e.met.alerts.WithLabelValues(rule, string(state)).Inc()
	if state == telemetry.AlertFiring && version == 1 {
		e.met.firing.WithLabelValues(rule).Inc()
	} else if state == telemetry.AlertResolved {
		e.met.firing.WithLabelValues(rule).Dec()
	}
	e.o.Sink.Emit(a)
}

// timer is a scheduled look at one subject: its silence deadline.
type timer struct {
	at    int64
	truck *truckState
	gauge *gaugeState
}

// timerHeap orders timers by time. A subject has at most one live entry
// (its queued field equals the entry's at); stale ones are skipped.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// schedule makes sure a timer exists for a subject whose deadline is at.
// queued is the subject's record of its live entry.
func (e *Engine) schedule(queued *int64, at int64, t timer) {
	if at == 0 || (*queued != 0 && *queued <= at) {
		return // an earlier entry exists; it reschedules when it pops
	}
	*queued = at
	t.at = at
	heap.Push(&e.timers, t)
}

// runTimers fires every timer due by the watermark.
func (e *Engine) runTimers() {
	for len(e.timers) > 0 && e.timers[0].at <= e.wm {
		t := heap.Pop(&e.timers).(timer)
		switch {
		case t.truck != nil:
			if t.truck.queued != t.at {
				continue
			}
			t.truck.queued = 0
			t.truck.onTimer(e)
		case t.gauge != nil:
			if t.gauge.queued != t.at {
				continue
			}
			t.gauge.queued = 0
			t.gauge.onTimer(e)
		}
	}
}

// String describes the engine for logs.
func (e *Engine) String() string {
	return fmt.Sprintf("rules engine: %d trucks, %d gauges tracked, watermark %s",
		len(e.trucks), len(e.gauges), e.Watermark().Format(time.RFC3339))
}
