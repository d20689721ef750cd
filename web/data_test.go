package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// trip records a finished trip of demo truck i departing at t0 and
// arriving 10 min later, as the trips stage hands them over.
func (r *rig) trip(i int, t0 time.Time) *telemetry.Trip {
	plate, dev := r.truck(i)
	p := r.city.PermitsOf(plate)[0]
	tr := &telemetry.Trip{ID: plate + "/" + strconv.FormatInt(t0.Unix(), 10), Plate: plate, Company: r.city.Trucks[i].Company,
		Device: dev, Permit: p.ID, Origin: p.Origins[0], Disposal: p.Disposal[0], DepartedAt: t0, ArrivedAt: t0.Add(10 * time.Minute),
		DistanceM: 4200, DurationS: 600}
	r.srv.AddTrip(tr)
	return tr
}

func TestTripLogKeepsEachTripOnce(t *testing.T) {
	r := newRig(t)
	t0 := r.clk.Now().Add(-time.Hour)
	tr := r.trip(0, t0)
	r.srv.AddTrip(tr) // handed over again after a crash
	plate, _ := r.truck(0)
	trips, err := r.srv.trips.between(t0.Add(-time.Hour), r.clk.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(trips) != 1 || trips[0].ID != tr.ID || trips[0].Disposal != tr.Disposal {
		t.Fatalf("trips %+v", trips)
	}
	// After a restart the log still knows it.
	again, err := openTripLog(r.srv.o.DataDir, r.city, r.clk.Now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	again.add(tr)
	again.close()
	if trips, _ := again.between(t0.Add(-time.Hour), r.clk.Now(), ""); len(trips) != 1 {
		t.Fatalf("after a restart: %d trips", len(trips))
	}
	if got, _ := r.srv.trips.at(plate, t0.Add(5*time.Minute)); got == nil || got.ID != tr.ID {
		t.Fatalf("trip at a time during it: %+v", got)
	}
	if got, _ := r.srv.trips.at(plate, t0.Add(30*time.Minute)); got != nil {
		t.Fatalf("trip after it ended: %+v", got)
	}
	if got, _ := r.srv.trips.between(t0.Add(-time.Hour), r.clk.Now(), "C02"); len(got) != 0 {
		t.Fatalf("C02's trips: %+v", got)
	}
}

func TestComplianceReport(t *testing.T) {
	r := newRig(t)
	t0 := time.Date(2026, 11, 23, 22, 0, 0, 0, shanghai) // yesterday night
	r.trip(0, t0)
	r.trip(0, t0.Add(30*time.Minute))
	up := r.raise("uncovered_load", 0, t0.Add(2*time.Minute), "warning")
	r.clear(up, 0, t0.Add(7*time.Minute))
	off := r.raise("off_route", 0, t0.Add(40*time.Minute), "warning")
	r.raise("uncovered_load", 1, t0.Add(time.Minute), "warning") // C02
	r.mg.SetOutcome(off, "insp", alerting.OutcomeWarned, "")
	b := r.browser().signIn("c01")
	var rep report
	if code := b.getJSON("/console/api/report?from=2026-11-23&to=2026-11-24", &rep); code != http.StatusOK {
		t.Fatalf("report: %d", code)
	}
	plate, _ := r.truck(0)
	var row *reportTruck
	for _, rt := range rep.Trucks {
		if rt.Plate == plate {
			row = rt
		}
	}
	if row == nil || row.Trips != 2 || row.Total != 2 || row.Violations["uncovered_load"] != 1 || row.Violations["off_route"] != 1 ||
		row.UncoveredMin != 5 || row.Per100Trips == nil || *row.Per100Trips != 100 {
		t.Fatalf("truck row %+v", row)
	}
	if rep.Trucks[0].Plate != plate || rep.Totals.Total != 2 || rep.Outcomes["warned"] != 1 || len(rep.Days) != 2 ||
		rep.Days[0].Date != "2026-11-23" || rep.Days[0].Total != 2 || rep.Days[0].Trips != 2 {
		t.Fatalf("report %+v totals %+v days %+v", rep.Trucks[0], rep.Totals, rep.Days)
	}
	// A report of the 23rd alone counts these alerts, begun that night,
	// although urbanwatch received them (OpenedAt) on the 24th.
	var day report
	b.getJSON("/console/api/report?from=2026-11-23&to=2026-11-23", &day)
	if day.Totals.Total != 2 {
		t.Fatalf("report of the day the offences began: %d violations, want 2", day.Totals.Total)
	}
	code, body, h := b.get("/console/api/report.csv?from=2026-11-23&to=2026-11-24")
	lines := strings.Split(string(body), "\n")
	if code != http.StatusOK || !strings.HasPrefix(string(body), "\uFEFF车牌 plate,") || !strings.Contains(h.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(lines[1], plate+",C01,") || !strings.Contains(lines[1], ",2,5.0,100.0") {
		t.Fatalf("csv: %d %q\n%s", code, h.Get("Content-Type"), body)
	}
	for _, bad := range []string{"from=2026-13-01", "from=2026-11-24&to=2026-11-01", "from=2026-01-01&to=2026-11-24",
		"from=2026-01-01&to=2026-04-03"} { // 93 days inclusive
		if code, _, _ := b.get("/console/api/report?" + bad); code != http.StatusBadRequest {
			t.Errorf("report?%s: %d, want 400", bad, code)
		}
	}
}

func TestFloodBoard(t *testing.T) {
	r := newRig(t)
	now := r.clk.Now()
	var rain, depth config.Gauge
	for _, g := range r.city.Gauges {
		switch {
		case g.Kind == config.GaugeRain && rain.Device == "":
			rain = g
		case g.Kind == config.GaugeDepth && depth.Device == "":
			depth = g
		}
	}
	feed := func(rec telemetry.Record) {
		r.seq++
		rec.Seq, rec.Received = r.seq, rec.TS
		r.hist.add(rec)
		r.srv.Observe(&rec)
	}
	for m := 0; m < 5*60; m += 10 { // 5 h of 2 mm every 10 min, the last 2 h at 8 mm
		mm := 2.0
		if m >= 3*60 {
			mm = 8
		}
		feed(telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{Device: rain.Device, TS: now.Add(-5*time.Hour + time.Duration(m+10)*time.Minute - time.Second)},
			Rain: telemetry.RainReading{MM: mm, IntervalS: 600}})
	}
	for m := 30; m >= 0; m -= 10 { // rising 10 cm an hour
		feed(telemetry.Record{Kind: telemetry.KindDepth, Header: telemetry.Header{Device: depth.Device, TS: now.Add(-time.Duration(m)*time.Minute - time.Second)},
			Depth: telemetry.DepthReading{DepthCM: 20 - float64(m)/6}})
	}
	ev := &telemetry.Alert{ID: telemetry.AlertID("rainstorm", rain.Device, now.Add(-time.Hour)), Rule: "rainstorm", State: telemetry.AlertFiring,
		Version: 1, Severity: "major", StartedAt: now.Add(-time.Hour), TS: now,
		Subject: telemetry.Subject{Kind: telemetry.SubjectGauge, ID: rain.Device, Name: rain.Name, Device: rain.Device},
		Details: map[string]any{"level": "orange"}}
	if err := r.mg.Apply([]*telemetry.Alert{ev}); err != nil {
		t.Fatal(err)
	}
	b := r.browser().signIn("duty")
	live := b.stream()
	var board struct {
		Gauges []gaugeBoard `json:"gauges"`
	}
	testWait(t, func() bool { // the alert change reaches the board through the stream goroutine
		b.getJSON("/console/api/flood", &board)
		for _, g := range board.Gauges {
			if g.Device == rain.Device {
				return g.Level == "orange"
			}
		}
		return false
	})
	for _, g := range board.Gauges {
		switch g.Device {
		case rain.Device:
			want := map[string]float64{"1h": 48, "3h": 108, "6h": 132, "12h": 132, "24h": 132}
			for k, v := range want {
				if g.Totals[k] == nil || *g.Totals[k] != v {
					t.Errorf("rain %s total %v, want %v", k, g.Totals[k], v)
				}
			}
			if len(g.Series) != 24 || *g.Series[23][1] != 48 || g.Series[0][1] != nil {
				t.Errorf("rain series %d buckets", len(g.Series))
			}
		case depth.Device:
			if g.DepthCM == nil || *g.DepthCM != 20 || g.Trend == nil || *g.Trend != 10 || g.DepthLevel != "none" || g.WarnCM != 15 {
				t.Errorf("depth point %+v", g)
			}
		}
	}
	r.flush <- now
	if ev := live.next(t, "gauges"); !strings.Contains(ev, `"`+rain.Device+`",48.0,"orange"`) {
		t.Fatalf("gauges event: %s", ev)
	}
	if code, _, _ := b.get("/console/api/alerts/" + url.PathEscape(ev.ID)); code != http.StatusOK {
		t.Fatalf("duty sees the rainstorm alert: %d", code)
	}
}

// testWait polls cond until it holds (it waits on another goroutine of the
// server, never on time passing in the test's clock).
func testWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTruckPageShowsThePermitInForce: the permit in force, its windows and
// dates as the rules judge them (config.Permit.Check).
func TestTruckPageShowsThePermitInForce(t *testing.T) {
	r := newRig(t)
	plate, _ := r.truck(0)
	b := r.browser().signIn("insp")
	var page struct {
		Permit map[string]any `json:"permit"`
	}
	if code := b.getJSON("/console/api/trucks/"+url.PathEscape(plate), &page); code != http.StatusOK {
		t.Fatalf("truck page: %d", code)
	}
	p := r.city.PermitsOf(plate)[0]
	if page.Permit["id"] != p.ID || page.Permit["in_force"] != true || page.Permit["window_open"] != true ||
		page.Permit["valid_from"] != p.ValidFrom.String() || len(page.Permit["windows"].([]any)) != len(p.Windows) ||
		page.Permit["windows"].([]any)[0] != p.Windows[0].String() {
		t.Fatalf("permit %v, want %s in force", page.Permit, p.ID)
	}
}

// TestLiveRainCountsAReplayedReportOnce: after a restart the rules replay
// records the console has seen; the hour's rain must not double.
func TestLiveRainCountsAReplayedReportOnce(t *testing.T) {
	r := newRig(t)
	var dev string
	for _, g := range r.city.Gauges {
		if g.Kind == config.GaugeRain {
			dev = g.Device
			break
		}
	}
	rec := telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{Device: dev, Seq: 1, TS: r.clk.Now().Add(-time.Minute)},
		Rain: telemetry.RainReading{MM: 5, IntervalS: 60}}
	r.srv.Observe(&rec)
	r.srv.Observe(&rec)
	if mm, _, ok := r.srv.fleet.gaugeNow(dev); !ok || mm != 5 {
		t.Fatalf("rain in the last hour %v, want 5", mm)
	}
}
