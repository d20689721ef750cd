package simulators

import (
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The models Run plays, exposed for offline playback in simulated time (no
// MQTT): package scenario drives them to record nights whose ground truth it
// derives from the models' own state. Records a model returns have Kind,
// Seq, TS and payload set; the caller sets Device and Received.

// Injection asks a TruckModel to commit violations now and then, for
// ground truth: per trip, with probability DetourP (loaded trips) a detour
// of 250–400 m off its permitted route held for 60–150 s, with DumpP
// (loaded trips) a stop on the roadside, at least 100 m outside every
// site's fence, to tip its load with the body raised for 30–60 s, and with
// OutageP (any trip) a terminal outage of 6–10 min during which nothing is
// measured, buffered or sent. None starts after NotAfter. Signal gaps
// (tunnels, with back-filled fixes) never overlap a detour or an outage,
// and end when the truck leaves the road (reaches a site, stops for a
// roadside dump), so that what it does off the road is sent live.
//
// OverloadP, UnwashedP, SpillP and GlitchP replace the rates at which a
// truck commits the other offences by itself (in Run: 1 %, 2 %, 0.5 % and
// 1 % of loaded trips): per load, with OverloadP it is loaded to 120–145 %
// of its rated load (otherwise 55–95 %); per loaded trip, with UnwashedP it
// leaves a construction site with a wash area without its wash stop
// (otherwise it stops 25–40 s in the wash area), with SpillP it loses
// 15–35 % of its load at 20 km/h or more, clear of every site, and with
// GlitchP its load cell reads 20–45 % low there for 8–30 s. No signal gap
// starts before a wash stop, during a glitch, or within 75 s of a spill, so
// that the engine and the judge see them live.
type Injection struct {
	DetourP, DumpP, OutageP               float64
	OverloadP, UnwashedP, SpillP, GlitchP float64
	NotAfter                              time.Time
}

// TruckModel is one simulated muck truck (see Run): its trip cycle, GPS
// terminal and sensors. It is not safe for concurrent use.
type TruckModel struct{ t *truck }

// NewTruckModel returns the index-th truck of a Run with seed (the device
// Run would take index-th from the registry): the same permit, load sensor
// and night, so that stepping it at Run's times yields the records Run
// publishes. With inj not nil the truck also commits the injected
// violations, and from the first of them on its night differs from Run's.
func NewTruckModel(seed int64, index int, inj *Injection) *TruckModel {
	t := newTruck(mustWorld(), seed, index, truckHasLoad(index))
	if inj != nil {
		t.inj = newInjector(seed, index, inj)
		// What the truck started the night doing was planned at its own
		// rates: plan it again at the injection's.
		switch {
		case t.phase == phLoading:
			t.target = t.loadTarget(t.inj.overload(), t.inj.rng.Float64())
			t.loadingSensors()
		case t.phase == phDriving && t.loaded:
			t.target = t.loadTarget(t.inj.overload(), t.inj.rng.Float64())
			t.load = t.target
			var u [8]float64
			for i := range u {
				u[i] = t.inj.rng.Float64()
			}
			unwashed, spill, glitch := t.inj.tripOffences()
			t.planTrip(u, unwashed, spill, glitch)
			t.skipPassed()
		}
		if t.phase == phDriving {
			t.inj.plan(t, t.loaded)
			// The trip began before the night: plan only what lies ahead.
			for _, at := range []*float64{&t.inj.detourAt, &t.inj.dumpAt, &t.inj.outageAt} {
				if *at >= 0 && *at < t.s {
					*at = -1
				}
			}
		}
	}
	return &TruckModel{t: t}
}

// Step advances the truck to now and appends what its terminal publishes
// then (see truck.Step): a GPS fix, a sensors message every 5th fix or on
// change, and after a signal gap the buffered messages, older than the fix
// before them. During an injected outage it appends nothing. The first call
// only sets the clock.
func (m *TruckModel) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	return m.t.Step(now, out)
}

// HasLoadSensor reports whether the truck reports its load (three trucks
// in four).
func (m *TruckModel) HasLoadSensor() bool { return m.t.hasLoad }

// TruckTruth is a truck's true state after its last Step.
type TruckTruth struct {
	Lat, Lon float64 // WGS-84, without GPS noise
	SpeedKmh float64 // without measurement noise
	Loaded   bool    // carrying waste (a roadside dump empties the truck)
	Cover    telemetry.Cover
	Body     telemetry.Body
	// Detour, RoadDump and Outage say which injected violation is under
	// way.
	Detour, RoadDump, Outage bool
	// LoadKg is the true load (a load-cell glitch aside); RatedLoadKg the
	// truck's rated load; Washing says it stands at its wash stop; Glitch
	// that its load cell reads low.
	LoadKg, RatedLoadKg float64
	Washing, Glitch     bool
}

// Truth returns the truck's true state at the time of its last Step.
func (m *TruckModel) Truth() TruckTruth {
	t := m.t
	lat, lon := t.truePos().latLon()
	tt := TruckTruth{Lat: lat, Lon: lon, SpeedKmh: t.v * 3.6, Cover: t.cover, Body: t.body,
		Loaded: t.load >= 1000, LoadKg: t.load, RatedLoadKg: t.rated, Glitch: t.glitchLeft > 0,
		Washing: t.phase == phDriving && t.red > 0 && t.loaded && t.s == washStopM && t.seen == 0}
	if t.inj != nil {
		tt.Detour, tt.RoadDump, tt.Outage = t.inj.detourOn, t.phase == phRoadDump, t.inj.silent()
	}
	return tt
}

// RainModel is one simulated tipping-bucket rain gauge (see Run). It is not
// safe for concurrent use.
type RainModel struct{ g *rainGauge }

// NewRainModels returns the n rain gauges of a Run with seed and storm that
// starts at start and reports every interval, in registry order.
func NewRainModels(n int, seed int64, storm bool, start time.Time, interval time.Duration) []*RainModel {
	gs := newRainGauges(n, seed, newField(seed, storm), start, interval)
	out := make([]*RainModel, len(gs))
	for i, g := range gs {
		out[i] = &RainModel{g: g}
	}
	return out
}

// Step integrates the rain since the previous report (or one interval
// before, on the first call) and appends the report at now. Skipping steps
// is a silent gauge: the next report carries everything tipped meanwhile.
func (m *RainModel) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	return m.g.Step(now, out)
}

// TrueMM is the rain that fell on the gauge over the interval of its last
// report, as the rain field gives it: before the bucket quantises it into
// tips.
func (m *RainModel) TrueMM() float64 { return m.g.lastTrue }

// Position returns where the gauge stands.
func (m *RainModel) Position() (lat, lon float64) { return m.g.p.latLon() }

// DepthModel is one simulated water-depth point (see Run). It is not safe
// for concurrent use.
type DepthModel struct{ d *depthPoint }

// NewDepthModels returns the n depth points of a Run with seed and storm
// that starts at start and reports every interval, in registry order.
func NewDepthModels(n int, seed int64, storm bool, start time.Time, interval time.Duration) []*DepthModel {
	ds := newDepthPoints(n, seed, mustWorld(), newField(seed, storm), start, interval)
	out := make([]*DepthModel, len(ds))
	for i, d := range ds {
		out[i] = &DepthModel{d: d}
	}
	return out
}

// Step advances the water level to now and appends the depth report (with
// ±0.2 cm sensor noise).
func (m *DepthModel) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	return m.d.Step(now, out)
}

// DepthCM is the true water depth at the last Step, without sensor noise.
func (m *DepthModel) DepthCM() float64 { return m.d.depth }

// Underpass reports whether the point is an underpass (floods fast).
func (m *DepthModel) Underpass() bool { return m.d.underpass }

// Position returns where the point is.
func (m *DepthModel) Position() (lat, lon float64) { return m.d.p.latLon() }
