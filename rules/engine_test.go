package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The test city: a construction site CS at the west end of a 4 km east–west
// road, a disposal site DS at its east end, the permitted route along the
// road, and one truck 鲁G·A0001 (device T1) allowed to haul from CS to DS.
var (
	origin = geo.NewPlane(119.16, 36.71)
	t0     = time.Date(2026, 11, 24, 21, 0, 0, 0, time.FixedZone("CST", 8*3600))
)

// square returns a square area of side m metres centred x, y metres from the
// origin.
func square(x, y, m float64) orb.MultiPolygon {
	var ring orb.Ring
	for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
		lon, lat := origin.Unproject(geo.XY{X: x + d[0]*m/2, Y: y + d[1]*m/2})
		ring = append(ring, orb.Point{lon, lat})
	}
	return orb.MultiPolygon{orb.Polygon{ring}}
}

func line(pts ...geo.XY) orb.LineString {
	var ls orb.LineString
	for _, p := range pts {
		lon, lat := origin.Unproject(p)
		ls = append(ls, orb.Point{lon, lat})
	}
	return ls
}

type cityOpt func(c *config.City)

func testCity(t testing.TB, opts ...cityOpt) *config.City {
	t.Helper()
	c := &config.City{
		Companies: []config.Company{{ID: "C1", Name: "潍坊测试运输有限公司"}},
		Trucks: []config.Truck{{Plate: "鲁G·A0001", Company: "C1", Devices: []string{"T1"}},
			{Plate: "鲁G·A0002", Company: "C1", Devices: []string{"T2"}}},
		Permits: []config.Permit{{ID: "P1", Truck: "鲁G·A0001",
			ValidFrom: config.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2026, Month: 12, Day: 31},
			Windows: []config.Window{{Start: 0, End: 24 * 3600}}, Origins: []string{"CS"}, Disposal: []string{"DS"},
			Routes: []string{"R1"}}},
		Sites: []config.Site{
			{ID: "CS", Name: "测试工地", Kind: config.SiteConstruction, Area: square(0, 0, 200)},
			{ID: "DS", Name: "测试消纳场", Kind: config.SiteDisposal, Area: square(4000, 0, 200)},
		},
		Routes: []config.Route{{ID: "R1", Name: "测试路", Path: line(geo.XY{X: 0, Y: 0}, geo.XY{X: 4000, Y: 0})}},
		Gauges: []config.Gauge{
			{Device: "G1", Name: "测试雨量站", Kind: config.GaugeRain, District: "奎文区", Lat: 36.71, Lon: 119.16},
			{Device: "D1", Name: "胜利街下穿", Kind: config.GaugeDepth, District: "奎文区", Lat: 36.71, Lon: 119.17},
		},
	}
	for _, o := range opts {
		o(c)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("test city: %v", err)
	}
	return c
}

// run feeds records to a fresh engine and collects its events.
type run struct {
	t      testing.TB
	e      *Engine
	events []telemetry.Alert
	seq    map[string]uint64
}

func newRun(t testing.TB, c *config.City) *run {
	t.Helper()
	r := &run{t: t, seq: map[string]uint64{}}
	var err error
	r.e, err = New(Options{City: c, Sink: SinkFunc(func(a *telemetry.Alert) { r.events = append(r.events, *a) })})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *run) feed(rec telemetry.Record) {
	k := rec.Device + rec.Kind.String()
	r.seq[k]++
	rec.Seq = r.seq[k]
	if rec.Received.IsZero() {
		rec.Received = rec.TS
	}
	r.e.Process(&rec)
}

func fix(dev string, at time.Time, x, y, speed float64) telemetry.Record {
	lon, lat := origin.Unproject(geo.XY{X: x, Y: y})
	return telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: dev, TS: at},
		Fix: telemetry.Fix{Lat: lat, Lon: lon, SpeedKmh: speed, Sats: 10, Valid: true}}
}

func sensors(dev string, at time.Time, cover telemetry.Cover, body telemetry.Body, loadKg float64) telemetry.Record {
	return telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{Device: dev, TS: at},
		Sensors: telemetry.SensorState{Cover: cover, Body: body, LoadKg: loadKg, HasLoad: loadKg >= 0}}
}

// drive feeds one fix a second from (x0, y0) to (x1, y1) at speed km/h,
// starting at from; it returns the time after the last fix.
func (r *run) drive(dev string, from time.Time, x0, y0, x1, y1, speed float64) time.Time {
	d := math.Hypot(x1-x0, y1-y0)
	v := speed / 3.6
	n := int(d / v)
	for i := 0; i <= n; i++ {
		f := float64(i) / math.Max(1, float64(n))
		r.feed(fix(dev, from.Add(time.Duration(i)*time.Second), x0+(x1-x0)*f, y0+(y1-y0)*f, speed))
	}
	return from.Add(time.Duration(n+1) * time.Second)
}

// park feeds a fix a second at one place for d.
func (r *run) park(dev string, from time.Time, x, y float64, d time.Duration) time.Time {
	for i := 0; i < int(d/time.Second); i++ {
		r.feed(fix(dev, from.Add(time.Duration(i)*time.Second), x, y, 0))
	}
	return from.Add(d)
}

// summary lists the events as "rule state subject +offset" lines, offsets
// from t0 in seconds, for comparing with what a test expects.
func (r *run) summary() []string {
	var out []string
	for _, a := range r.events {
		out = append(out, fmt.Sprintf("%s %s %s v%d", a.Rule, a.State, a.Subject.ID, a.Version))
	}
	return out
}

func (r *run) want(lines ...string) {
	r.t.Helper()
	got := r.summary()
	if strings.Join(got, "\n") != strings.Join(lines, "\n") {
		r.t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(lines, "\n  "))
	}
}

func (r *run) event(rule string, state telemetry.AlertState) telemetry.Alert {
	r.t.Helper()
	for _, a := range r.events {
		if a.Rule == rule && a.State == state {
			return a
		}
	}
	r.t.Fatalf("no %s %s event in %v", rule, state, r.summary())
	return telemetry.Alert{}
}

func near(t testing.TB, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -tol || d > tol {
		t.Fatalf("%s at %s, want %s ± %s", what, got.Format(time.TimeOnly), want.Format(time.TimeOnly), tol)
	}
}

const (
	closed = telemetry.CoverClosed
	open   = telemetry.CoverOpen
	down   = telemetry.BodyDown
	raised = telemetry.BodyRaised
)

func TestUncoveredLoadRaisesOnceAndClears(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, open, down, 15000))
	end := r.drive("T1", t0, 0, 0, 1500, 0, 36) // 150 s on the road with the cover open
	r.feed(sensors("T1", end, closed, down, 15000))
	r.drive("T1", end, 1500, 0, 2000, 0, 36)
	r.want("uncovered_load firing 鲁G·A0001 v1", "uncovered_load resolved 鲁G·A0001 v2")
	a := r.event(RuleUncoveredLoad, telemetry.AlertFiring)
	// Outside the 200 m site after 100 m at 10 m/s, then 30 s of dwell.
	near(t, "firing", a.TS, t0.Add(40*time.Second), 2*time.Second)
	near(t, "started", a.StartedAt, t0.Add(10*time.Second), 2*time.Second)
	if a.Subject.CompanyName != "潍坊测试运输有限公司" || a.Details["cover"] != "open" {
		t.Fatalf("subject/details: %+v %+v", a.Subject, a.Details)
	}
	res := r.event(RuleUncoveredLoad, telemetry.AlertResolved)
	near(t, "resolved", res.TS, end.Add(10*time.Second), 2*time.Second)
	if res.ID != a.ID {
		t.Fatalf("resolved id %s, firing id %s", res.ID, a.ID)
	}
}

func TestUncoveredLoadNearMisses(t *testing.T) {
	r := newRun(t, testCity(t))
	// Cover open while loading inside the site, for minutes.
	r.feed(sensors("T1", t0, open, down, 15000))
	at := r.park("T1", t0, 10, 10, 3*time.Minute)
	// Closed when leaving; open for 8 s on the road (a flapping tarp).
	r.feed(sensors("T1", at, closed, down, 15000))
	at = r.drive("T1", at, 0, 0, 600, 0, 36)
	r.feed(sensors("T1", at, open, down, 15000))
	at = r.drive("T1", at, 600, 0, 680, 0, 36)
	r.feed(sensors("T1", at, closed, down, 15000))
	at = r.drive("T1", at, 680, 0, 1500, 0, 36)
	// Empty truck (load under 1 t) with the cover open: not a violation.
	r.feed(sensors("T1", at, open, down, 300))
	r.drive("T1", at, 1500, 0, 2500, 0, 36)
	r.want()
}

func TestUncoveredLoadStaysOneAlertAtRedLights(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, open, down, 15000))
	at := r.drive("T1", t0, 0, 0, 1000, 0, 36)
	at = r.park("T1", at, 1000, 0, 45*time.Second) // a red light: stopped, cover still open
	at = r.drive("T1", at, 1000, 0, 2000, 0, 36)
	r.feed(sensors("T1", at, closed, down, 15000))
	r.drive("T1", at, 2000, 0, 2500, 0, 36)
	r.want("uncovered_load firing 鲁G·A0001 v1", "uncovered_load resolved 鲁G·A0001 v2")
}

func TestLateSensorChangeMovesTheStart(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 15000))
	at := r.drive("T1", t0, 0, 0, 1000, 0, 36)
	// The cover opened at `at`, but the sensors message arrives 20 s of
	// fixes later.
	opened := at
	at = r.drive("T1", at, 1000, 0, 1200, 0, 36)
	r.feed(sensors("T1", opened, open, down, 15000))
	r.drive("T1", at, 1200, 0, 1400, 0, 36)
	a := r.event(RuleUncoveredLoad, telemetry.AlertFiring)
	near(t, "started", a.StartedAt, opened, time.Second)
	near(t, "firing", a.TS, opened.Add(30*time.Second), 2*time.Second)
}

func TestOffRoute(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 15000))
	at := r.drive("T1", t0, 0, 0, 1000, 0, 36)
	at = r.drive("T1", at, 1000, 0, 1000, 300, 36)
	at = r.drive("T1", at, 1000, 300, 2500, 300, 36) // 150 s, 300 m off the road
	at = r.drive("T1", at, 2500, 300, 2500, 0, 36)
	r.drive("T1", at, 2500, 0, 3500, 0, 36)
	r.want("off_route firing 鲁G·A0001 v1", "off_route resolved 鲁G·A0001 v2")
	a := r.event(RuleOffRoute, telemetry.AlertFiring)
	if d := a.Details["distance_m"].(float64); d < 50 || d > 310 {
		t.Fatalf("distance_m %v", d)
	}
}

func TestOffRouteDriftAlongTheEdgeIsSilent(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 15000))
	at := r.drive("T1", t0, 0, 0, 500, 0, 36)
	// 40 m from the route line with ±8 m of noise, corridor 50 m.
	for i := range 300 {
		noise := 8 * math.Sin(float64(i)*1.7)
		r.feed(fix("T1", at.Add(time.Duration(i)*time.Second), 500+float64(i)*10, 40+noise, 36))
	}
	r.want()
}

func TestIllegalDumping(t *testing.T) {
	cases := []struct {
		name  string
		x     float64
		hold  time.Duration
		after float64 // load after the body is lowered
		wants []string
	}{
		{"roadside 30 s", 2000, 30 * time.Second, 200,
			[]string{"illegal_dumping firing 鲁G·A0001 v1", "illegal_dumping resolved 鲁G·A0001 v2"}},
		{"at the disposal site", 4000, 60 * time.Second, 200, nil},
		{"body raised 5 s at the roadside, load kept", 2000, 5 * time.Second, 15000, nil},
		{"body raised 5 s at the roadside, load gone", 2000, 5 * time.Second, 200,
			[]string{"illegal_dumping firing 鲁G·A0001 v1", "illegal_dumping resolved 鲁G·A0001 v2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(t, testCity(t))
			r.feed(sensors("T1", t0, closed, down, 15000))
			at := r.drive("T1", t0, 0, 0, tc.x, 0, 36)
			r.feed(sensors("T1", at, open, raised, 15000))
			end := r.park("T1", at, tc.x, 0, tc.hold)
			r.feed(sensors("T1", end, closed, down, tc.after))
			r.drive("T1", end, tc.x, 0, tc.x-500, 0, 36)
			r.want(tc.wants...)
		})
	}
}

func TestIllegalDumpingByLoadDrop(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 15000))
	at := r.drive("T1", t0, 0, 0, 2000, 0, 36)
	for i := range 12 { // 15 t → 2 t over two minutes, body never reported raised
		r.feed(fix("T1", at.Add(time.Duration(i*10)*time.Second), 2000, 0, 0))
		r.feed(sensors("T1", at.Add(time.Duration(i*10)*time.Second), closed, down, 15000-float64(i)*1200))
	}
	r.drive("T1", at.Add(2*time.Minute), 2000, 0, 2500, 0, 36)
	r.want("illegal_dumping firing 鲁G·A0001 v1", "illegal_dumping resolved 鲁G·A0001 v2")
	if tr := r.event(RuleIllegalDumping, telemetry.AlertFiring).Details["trigger"]; tr != "load_drop" {
		t.Fatalf("trigger %v", tr)
	}
}

func TestPermitHours(t *testing.T) {
	night := func(c *config.City) {
		c.Permits[0].Windows = []config.Window{{Start: 20 * 3600, End: 6 * 3600}}
		c.Permits[0].ValidTo = config.Date{Year: 2026, Month: 11, Day: 24}
	}
	t.Run("across midnight inside the window", func(t *testing.T) {
		r := newRun(t, testCity(t, night))
		start := time.Date(2026, 11, 24, 23, 58, 0, 0, t0.Location())
		r.feed(sensors("T1", start, closed, down, 15000))
		r.drive("T1", start, 0, 0, 4000, 0, 36) // until 00:04:40 on the 25th, the window that opened on ValidTo
		r.want()
	})
	t.Run("morning, outside the window", func(t *testing.T) {
		r := newRun(t, testCity(t, night))
		start := time.Date(2026, 11, 24, 7, 30, 0, 0, t0.Location())
		r.feed(sensors("T1", start, closed, down, 15000))
		at := r.drive("T1", start, 0, 0, 3000, 0, 36)
		r.park("T1", at, 3000, 0, 6*time.Minute)
		r.want("outside_permit_hours firing 鲁G·A0001 v1", "outside_permit_hours resolved 鲁G·A0001 v2")
	})
	t.Run("expired permit", func(t *testing.T) {
		r := newRun(t, testCity(t, night))
		start := time.Date(2026, 11, 25, 21, 0, 0, 0, t0.Location())
		r.feed(sensors("T1", start, closed, down, 15000))
		r.drive("T1", start, 0, 0, 3000, 0, 36)
		r.want("no_permit firing 鲁G·A0001 v1")
	})
	t.Run("no permit at all", func(t *testing.T) {
		r := newRun(t, testCity(t))
		r.drive("T2", t0, 0, 0, 1000, 0, 36)
		r.want("no_permit firing 鲁G·A0002 v1")
	})
}

func TestSignalLostOnTheWatermark(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 15000))
	at := r.drive("T1", t0, 0, 0, 1000, 0, 36)
	// A 3-minute tunnel: silent, then fixes again.
	at = r.drive("T1", at.Add(3*time.Minute), 1300, 0, 1500, 0, 36)
	r.want()
	last := at.Add(-time.Second)
	r.e.AdvanceTo(last.Add(4 * time.Minute))
	r.want()
	r.e.AdvanceTo(last.Add(5 * time.Minute))
	r.want("signal_lost firing 鲁G·A0001 v1")
	near(t, "firing", r.event(RuleSignalLost, telemetry.AlertFiring).TS, last.Add(5*time.Minute), time.Second)
	r.feed(fix("T1", last.Add(9*time.Minute), 1600, 0, 30))
	r.want("signal_lost firing 鲁G·A0001 v1", "signal_lost resolved 鲁G·A0001 v2")
}

func TestSignalLostNeedsATruckOnTheMove(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, closed, down, 200))
	at := r.park("T1", t0, 10, 10, time.Minute) // empty, parked in the site
	r.e.AdvanceTo(at.Add(time.Hour))
	for _, a := range r.events {
		if a.Subject.Kind == telemetry.SubjectTruck {
			t.Fatalf("truck alert for a parked empty truck: %v", r.summary())
		}
	}
}

func TestLiveWatermarkFollowsTheWallClock(t *testing.T) {
	r := newRun(t, testCity(t))
	wall := t0
	r.e.Advance(wall)
	r.feed(sensors("T1", wall, closed, down, 15000))
	at := r.drive("T1", wall, 0, 0, 1000, 0, 36)
	wall = at
	r.e.Advance(wall)
	// A device with a clock far ahead cannot push the watermark.
	r.feed(fix("T2", wall.Add(4*time.Minute), 0, 0, 0))
	if got := r.e.Watermark(); got.After(wall.Add(2 * time.Second)) {
		t.Fatalf("watermark %s pushed beyond the wall clock %s", got, wall)
	}
	for range 301 {
		wall = wall.Add(time.Second)
		r.e.Advance(wall)
	}
	r.want("signal_lost firing 鲁G·A0001 v1")
}

func rain(dev string, at time.Time, mm float64) telemetry.Record {
	return telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{Device: dev, TS: at},
		Rain: telemetry.RainReading{MM: mm, IntervalS: 60}}
}

func depth(dev string, at time.Time, cm float64) telemetry.Record {
	return telemetry.Record{Kind: telemetry.KindDepth, Header: telemetry.Header{Device: dev, TS: at},
		Depth: telemetry.DepthReading{DepthCM: cm}}
}

// rainFor feeds one report a minute of mmPerMin for d, returning the end.
func (r *run) rainFor(dev string, from time.Time, d time.Duration, mmPerMin float64) time.Time {
	n := int(d / time.Minute)
	for i := 1; i <= n; i++ {
		r.feed(rain(dev, from.Add(time.Duration(i)*time.Minute), mmPerMin))
		r.feed(depth("D1", from.Add(time.Duration(i)*time.Minute), 0))
	}
	return from.Add(time.Duration(n) * time.Minute)
}

func TestRainstormLevelsAreOneAlert(t *testing.T) {
	r := newRun(t, testCity(t))
	at := r.rainFor("G1", t0, 100*time.Minute, 0.55) // 55 mm in 100 min: orange (≥ 50 mm/3 h)
	at = r.rainFor("G1", at, 80*time.Minute, 0.6)    // +48 mm: red (≥ 100 mm/3 h)
	at = r.rainFor("G1", at, 14*time.Hour, 0)
	var got []string
	for _, a := range r.events {
		if a.Rule == RuleRainstorm {
			got = append(got, fmt.Sprintf("%s %s %s", a.State, a.Severity, a.Details["level"]))
		}
	}
	// Downgrades follow the longer CMA windows as the rain ages out of
	// them: orange (3 h), yellow (6 h), blue (12 h), then cleared.
	want := []string{"firing major orange", "firing critical red", "firing major orange", "firing warning yellow",
		"firing minor blue", "resolved minor "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rainstorm events %q, want %q", got, want)
	}
	ids := map[string]bool{}
	for _, a := range r.events {
		if a.Rule == RuleRainstorm {
			ids[a.ID] = true
		}
	}
	if len(ids) != 1 {
		t.Fatalf("rainstorm events span %d alert ids, want 1", len(ids))
	}
	if h := r.event(RuleHeavyRain, telemetry.AlertFiring); h.Subject.ID != "G1" {
		t.Fatalf("heavy rain subject %+v", h.Subject)
	}
	_ = at
}

func TestRainJustUnderThresholdsIsSilent(t *testing.T) {
	r := newRun(t, testCity(t))
	r.rainFor("G1", t0, 180*time.Minute, 0.26) // 46.8 mm in 3 h, 15.6 mm in any hour
	r.want()
}

func TestRainGapIsNotZero(t *testing.T) {
	r := newRun(t, testCity(t))
	at := r.rainFor("G1", t0, 60*time.Minute, 1.0) // 60 mm: orange and heavy rain
	// 2 h without reports, then reports of no rain: the 3 h window has a
	// gap, so orange must not be lowered until the gap has left it.
	at = at.Add(2 * time.Hour)
	r.feed(rain("G1", at, 0))
	for _, a := range r.events {
		if a.Rule == RuleRainstorm && a.State == telemetry.AlertResolved {
			t.Fatalf("rainstorm resolved across a reporting gap: %v", r.summary())
		}
	}
}

func TestWaterloggingHysteresis(t *testing.T) {
	r := newRun(t, testCity(t))
	levels := []float64{5, 10, 14, 16, 20, 27, 30, 24, 23, 26, 20, 14, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11}
	for i, cm := range levels {
		r.feed(depth("D1", t0.Add(time.Duration(i)*2*time.Minute), cm))
		r.feed(rain("G1", t0.Add(time.Duration(i)*2*time.Minute), 0))
	}
	var got []string
	for _, a := range r.events {
		if a.Rule == RuleWaterlogging {
			got = append(got, fmt.Sprintf("%s %s %s", a.State, a.Severity, a.Details["level"]))
		}
	}
	want := []string{"firing warning warning", "firing critical road_closure", "firing warning warning", "resolved warning none"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("waterlogging events %q, want %q", got, want)
	}
}

func TestSensorOffline(t *testing.T) {
	r := newRun(t, testCity(t))
	for i := range 10 {
		r.feed(rain("G1", t0.Add(time.Duration(i)*5*time.Minute), 0))
		r.feed(depth("D1", t0.Add(time.Duration(i)*5*time.Minute), 0))
	}
	last := t0.Add(45 * time.Minute)
	r.e.AdvanceTo(last.Add(29 * time.Minute))
	r.want()
	for i := range 8 { // the depth point goes on reporting; the gauge does not
		r.feed(depth("D1", last.Add(time.Duration(i+1)*5*time.Minute), 0))
	}
	r.want("sensor_offline firing G1 v1")
	r.feed(rain("G1", last.Add(50*time.Minute), 0))
	r.want("sensor_offline firing G1 v1", "sensor_offline resolved G1 v2")
}

func TestZoneViolation(t *testing.T) {
	school := func(c *config.City) {
		c.Zones = []config.Zone{{ID: "Z1", Name: "育才小学", Area: config.GeoJSONGeometry{Area: square(2000, 0, 400)},
			Windows:   []config.Window{{Start: 7 * 3600, End: 8*3600 + 1800}},
			Condition: config.ZoneCondition{AnyTruck: true}}}
	}
	r := newRun(t, testCity(t, school))
	morning := time.Date(2026, 11, 24, 7, 10, 0, 0, t0.Location())
	r.feed(sensors("T1", morning, closed, down, 200))
	r.drive("T1", morning, 1000, 0, 3000, 0, 20)
	r.want("zone_violation firing 鲁G·A0001 v1", "zone_violation resolved 鲁G·A0001 v2")
	if z := r.event(RuleZoneViolation, telemetry.AlertFiring).Details["zone_name"]; z != "育才小学" {
		t.Fatalf("zone_name %v", z)
	}
	r2 := newRun(t, testCity(t, school))
	evening := time.Date(2026, 11, 24, 21, 10, 0, 0, t0.Location())
	r2.feed(sensors("T1", evening, closed, down, 200))
	r2.drive("T1", evening, 1000, 0, 3000, 0, 20)
	r2.want()
}

func TestUnboundDeviceIsSkipped(t *testing.T) {
	r := newRun(t, testCity(t))
	r.drive("T9", t0, 0, 0, 3000, 0, 36)
	r.want()
}

func TestLaggingClockIsNotSilence(t *testing.T) {
	r := newRun(t, testCity(t))
	wall := t0.Add(10 * time.Minute)
	r.e.Advance(wall)
	// The terminal's clock runs 10 minutes behind: every fix is "old",
	// but the truck is talking.
	r.feed(sensors("T1", t0, closed, down, 15000))
	for i := range 120 {
		r.feed(fix("T1", t0.Add(time.Duration(i)*time.Second), float64(i)*10, 0, 36))
		wall = wall.Add(time.Second)
		r.e.Advance(wall)
	}
	for _, a := range r.events {
		if a.Rule == RuleSignalLost {
			t.Fatalf("signal_lost for a truck that reports every second: %v", r.summary())
		}
	}
}

func TestReloadKeepsStateAndResolvesRemoved(t *testing.T) {
	r := newRun(t, testCity(t))
	r.feed(sensors("T1", t0, open, down, 15000))
	at := r.drive("T1", t0, 0, 0, 1000, 0, 36)
	r.drive("T2", t0, 0, 0, 1000, 0, 36)
	r.want("uncovered_load firing 鲁G·A0001 v1", "no_permit firing 鲁G·A0002 v1")

	// A new city: the corridor is wider and truck 2 is gone.
	wider := func(c *config.City) {
		c.Permits[0].CorridorM = 80
		c.Trucks = c.Trucks[:1]
	}
	if err := r.e.SetCity(testCity(t, wider)); err != nil {
		t.Fatal(err)
	}
	r.want("uncovered_load firing 鲁G·A0001 v1", "no_permit firing 鲁G·A0002 v1", "no_permit resolved 鲁G·A0002 v2")
	if d := r.events[2].Details["reason"]; d != "removed from configuration" {
		t.Fatalf("reason %v", d)
	}
	// Truck 1's alert carried over: closing the cover resolves the same
	// alert, no second raise.
	r.feed(sensors("T1", at, closed, down, 15000))
	r.drive("T1", at, 1000, 0, 1500, 0, 36)
	r.want("uncovered_load firing 鲁G·A0001 v1", "no_permit firing 鲁G·A0002 v1", "no_permit resolved 鲁G·A0002 v2",
		"uncovered_load resolved 鲁G·A0001 v2")
	if r.events[0].ID != r.events[3].ID {
		t.Fatal("the resolved alert is not the one raised before the reload")
	}
}

func TestSnapshotRestoreContinuesExactly(t *testing.T) {
	// One engine runs the whole trip; another is snapshotted half way and
	// restored into a fresh engine: the events after the cut must match.
	trip := func(r *run, from, to int) {
		r.seq = map[string]uint64{}
		recs := []telemetry.Record{sensors("T1", t0, open, down, 15000)}
		for i := range 200 {
			if i == 150 {
				recs = append(recs, sensors("T1", t0.Add(150*time.Second), closed, down, 15000))
			}
			recs = append(recs, fix("T1", t0.Add(time.Duration(i)*time.Second), float64(i)*10, 0, 36))
		}
		for _, rec := range recs[from:min(to, len(recs))] {
			r.feed(rec)
		}
	}
	whole := newRun(t, testCity(t))
	trip(whole, 0, 1000)
	first := newRun(t, testCity(t))
	trip(first, 0, 60)
	snap, err := first.e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	second := newRun(t, testCity(t))
	if err := second.e.Restore(snap); err != nil {
		t.Fatal(err)
	}
	trip(second, 60, 1000)
	got := append(first.summary(), second.summary()...)
	if strings.Join(got, "|") != strings.Join(whole.summary(), "|") {
		t.Fatalf("split run %q, whole run %q", got, whole.summary())
	}
}

func TestLateDumpAcrossARestartIsJudgedWhereItHappened(t *testing.T) {
	// The truck tips inside the disposal site, but its sensor reports of
	// the tipping arrive only after it has driven off, and after a restart.
	first := newRun(t, testCity(t))
	first.feed(sensors("T1", t0, closed, down, 15000))
	at := first.drive("T1", t0, 3000, 0, 4000, 0, 36)
	dumped := at
	at = first.park("T1", at, 4000, 0, 40*time.Second)
	at = first.drive("T1", at, 4000, 0, 3000, 0, 36)
	snap, err := first.e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	second := newRun(t, testCity(t))
	if err := second.e.Restore(snap); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		second.feed(sensors("T1", dumped.Add(time.Duration(i*5)*time.Second), open, raised, 15000-float64(i)*2000))
	}
	second.feed(sensors("T1", dumped.Add(40*time.Second), closed, down, 200))
	second.drive("T1", at, 3000, 0, 2500, 0, 36)
	first.want()
	second.want()
}
