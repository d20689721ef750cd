package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Rule ids of the offences an inspection team also looks for.
const (
	RuleOverload     = "overload"      // 超量装载
	RuleUnwashedExit = "unwashed_exit" // 带泥上路
	RuleSpillage     = "spillage"      // 道路抛洒
)

// TripSink receives every finished trip, in the order trips end. Like
// Sink it is called from the engine's goroutine and must not keep the
// *Trip after it returns.
type TripSink interface {
	Trip(t *telemetry.Trip)
}

// maxTripViolations bounds the alert ids one trip keeps.
const maxTripViolations = 32

// tripState is a truck's open trip: loaded, from loading until unloading.
// departed is zero until the loaded truck is first outside its origin
// site.
type tripState struct {
	loaded     int64
	departed   int64
	origin     int32 // construction site it was loaded in, -1 none
	permit     string
	distM      float64
	last       geo.XY
	hasLast    bool
	violations []string
}

// offenceState is what the overload, unwashed_exit and spillage rules and
// the trip remember of one truck.
type offenceState struct {
	overload cond

	// unwashed_exit: the site the truck was loaded in (or, without a load
	// sensor, entered) and its stays in that site's wash area since.
	washSite  int32 // -1 none
	washSince int64 // in the wash area since (the last fix before it entered); 0 = not in it
	washBest  int64 // longest stay so far, ns
	washStood bool  // it stood still in the site (without a load sensor: was loaded there)
	unwashed  cond  // an event: fires at the exit

	// spillage: the load's recent peak while moving, and a drop waiting to
	// be confirmed (a glitch recovers within the window).
	spillPeakKg        float32
	spillPeakTS        int64
	spillDropTS        int64 // 0 = nothing pending
	spillFrom, spillTo float32
	spillLon, spillLat float64
	spillSpeed         float32
	spill              cond

	wasLoaded bool
	trip      *tripState
}

// inWash reports whether the truck's position is in site's wash area.
func (st *truckState) inWash(e *Engine, site int32) bool {
	if site < 0 {
		return false
	}
	w := e.m.site[site].WashArea
	p := orb.Point{st.lon, st.lat}
	return w != nil && w.Bound().Contains(p) && planar.MultiPolygonContains(w, p)
}

// washStep follows the truck's stays in the wash area of the site it was
// loaded in; prevFix is the fix before this one (a stay counts from the
// last fix outside the wash area to the first fix outside it again: the
// longest it can have been, so a short fix interval never costs the driver
// a wash).
func (st *truckState) washStep(e *Engine, ts, prevFix int64) {
	if st.washSite < 0 || st.site != st.washSite {
		return
	}
	st.washStood = st.washStood || float64(st.speed) < e.m.rules.UncoveredLoad.MinSpeedKmh
	in := st.inWash(e, st.site)
	switch {
	case in && st.washSince == 0:
		st.washSince = max(prevFix, 1)
	case !in && st.washSince != 0:
		st.washBest = max(st.washBest, ts-st.washSince)
		st.washSince = 0
	}
}

// startWash begins judging the wash of a truck loaded in (or entering)
// site at ts, if that site has a wash area.
func (st *truckState) startWash(e *Engine, site int32, ts, prevFix int64) {
	st.washSite, st.washSince, st.washBest = -1, 0, 0
	if site < 0 || e.m.site[site].WashArea == nil {
		return
	}
	st.washSite = site
	st.washStood = float64(st.speed) < e.m.rules.UncoveredLoad.MinSpeedKmh
	if st.inWash(e, site) {
		st.washSince = max(prevFix, 1)
	}
}

// exitSite judges unwashed_exit as the truck leaves site at ts: loaded (by
// its sensor, or without one leaving a construction site where it stood
// still: a truck that only drove through the fence on the street outside
// was not loaded there) and no stay of min_wash in the wash area since it
// was loaded.
func (st *truckState) exitSite(e *Engine, device string, site int32, ts int64, loaded bool) {
	if st.washSite != site || site < 0 {
		return
	}
	st.washSite = -1
	if st.washSince != 0 {
		st.washBest = max(st.washBest, ts-st.washSince)
		st.washSince = 0
	}
	r := &e.m.rules.UnwashedExit
	if !loaded || !st.hasLoadSensor && !st.washStood || st.washBest >= int64(r.MinWash) || st.unwashed.firing {
		return
	}
	s := e.m.site[site]
	st.unwashed = cond{firing: true, started: ts, since: ts}
	st.fire(e, device, RuleUnwashedExit, &st.unwashed, r.Severity, ts, map[string]any{
		"site": s.ID, "site_name": s.Name, "wash_s": round1(float64(st.washBest) / 1e9), "min_wash_s": r.MinWash.Seconds(),
		"speed_kmh": round1(float64(st.speed)),
	})
}

// spillSensors follows the load for spillage on an in-order sensors
// report: a drop of drop_pct within the window while moving fast outside a
// site is held until the window has passed; recovering in time cancels it.
// The peak is the load's while moving fast outside a site: a report while
// slow or in a site starts it afresh, so a load that fell while standing
// (a dump, already illegal_dumping) or crawling in traffic is not a spill
// when the truck speeds up again.
func (st *truckState) spillSensors(e *Engine, device string, ts int64, kg float32) {
	r := &e.m.rules.Spillage
	within := int64(r.Within)
	keep := float32(1 - r.DropPct/100)
	if st.spillDropTS != 0 {
		switch {
		case kg >= st.spillFrom*keep && ts-st.spillDropTS <= within:
			st.spillDropTS = 0 // recovered: a glitch
			e.met.glitches.Inc()
		case ts-st.spillDropTS >= within:
			st.spillTo = min(st.spillTo, kg)
			st.confirmSpill(e, device, ts)
		default:
			st.spillTo = min(st.spillTo, kg)
			return
		}
	}
	outside := st.site < 0
	fast := float64(st.speed) > r.MinSpeedKmh
	switch {
	case kg >= st.spillPeakKg || ts-st.spillPeakTS > within || !outside || !fast:
		st.spillPeakKg, st.spillPeakTS = kg, ts
	case float64(st.spillPeakKg) >= e.m.rules.UncoveredLoad.LoadedKg && kg <= st.spillPeakKg*keep && !st.spill.firing:
		st.spillDropTS, st.spillFrom, st.spillTo = ts, st.spillPeakKg, kg
		st.spillLon, st.spillLat, st.spillSpeed = st.lon, st.lat, st.speed
	}
}

// confirmSpill raises spillage for the pending drop.
func (st *truckState) confirmSpill(e *Engine, device string, now int64) {
	r := &e.m.rules.Spillage
	started := st.spillDropTS
	st.spillDropTS = 0
	st.spillPeakKg, st.spillPeakTS = st.spillTo, now
	st.spill = cond{firing: true, started: started, since: started}
	st.spill.version = 1
	e.emit(RuleSpillage, telemetry.AlertFiring, 1, r.Severity, st.subject(e, device), started, now,
		telemetry.Location{Lat: st.spillLat, Lon: st.spillLon}, map[string]any{
			"load_before_kg": float64(st.spillFrom), "load_after_kg": float64(st.spillTo),
			"drop_pct": round1(100 * (1 - float64(st.spillTo)/float64(st.spillFrom))), "threshold_pct": r.DropPct,
			"within_s": r.Within.Seconds(), "speed_kmh": round1(float64(st.spillSpeed)), "min_speed_kmh": r.MinSpeedKmh,
		})
	st.noteViolation(RuleSpillage, started)
}

// endEvents resolves the event rules once the truck enters a site or
// their clear_after has passed.
func (st *truckState) endEvents(e *Engine, device string, now int64) {
	r := &e.m.rules
	for _, ev := range []struct {
		rule     string
		c        *cond
		severity string
		clear    time.Duration
	}{
		{RuleUnwashedExit, &st.unwashed, r.UnwashedExit.Severity, r.UnwashedExit.ClearAfter},
		{RuleSpillage, &st.spill, r.Spillage.Severity, r.Spillage.ClearAfter},
	} {
		if !ev.c.firing {
			continue
		}
		switch {
		case st.site >= 0:
			st.resolve(e, device, ev.rule, ev.c, ev.severity, now, map[string]any{"reason": "entered_site"})
		case now-ev.c.started >= int64(ev.clear):
			st.resolve(e, device, ev.rule, ev.c, ev.severity, now, map[string]any{"reason": "expired"})
		}
	}
}

// evaluateOverload runs the overload rule at now.
func (st *truckState) evaluateOverload(e *Engine, device string, now, from int64, s sensorSample, known bool) {
	r := &e.m.rules.Overload
	rated := st.info.truck.RatedLoadKg
	if rated <= 0 || !st.hasLoadSensor {
		return // not judged: no rated load, or no load sensor
	}
	limit := rated * (1 + r.TolerancePct/100)
	current := known && s.hasLoad && !st.sensLagging
	over := current && float64(s.loadKg) > limit
	under := known && s.hasLoad && float64(s.loadKg) <= limit
	switch st.overload.update(now, over && float64(st.speed) >= r.MinSpeedKmh && st.site < 0, under, from, r.Dwell, r.ClearAfter) {
	case raise:
		st.fire(e, device, RuleOverload, &st.overload, r.Severity, now, map[string]any{
			"load_kg": float64(s.loadKg), "rated_load_kg": rated, "limit_kg": math.Round(limit),
			"over_pct": round1(100 * (float64(s.loadKg)/rated - 1)), "tolerance_pct": r.TolerancePct,
			"speed_kmh": round1(float64(st.speed)), "dwell_s": r.Dwell.Seconds(),
		})
	case resolve:
		st.emitResolved(e, device, RuleOverload, &st.overload, r.Severity, now, map[string]any{"reason": "within_limit"})
	}
}

// tripStep opens, departs and ends the truck's trip at now.
func (st *truckState) tripStep(e *Engine, device string, now int64, loaded bool) {
	st.wasLoaded = loaded
	switch {
	case loaded && st.trip == nil:
		tr := &tripState{loaded: now, origin: -1}
		if st.site >= 0 && e.m.site[st.site].Kind == config.SiteConstruction {
			tr.origin = st.site
		} else if st.site < 0 && st.lastSite >= 0 && !st.hasLoadSensor && e.m.site[st.lastSite].Kind == config.SiteConstruction {
			tr.origin = st.lastSite // without a load sensor it is loaded on leaving
		}
		t := time.Unix(0, now)
		for i := range st.info.permits {
			if v, _ := st.info.permits[i].p.Check(t, e.m.loc); v {
				tr.permit = st.info.permits[i].p.ID
				break
			}
		}
		if st.site < 0 {
			tr.departed, tr.last, tr.hasLast = now, st.pos, true
		}
		st.trip = tr
	case loaded && st.trip.departed == 0 && st.site < 0:
		st.trip.departed, st.trip.last, st.trip.hasLast = now, st.pos, true
	case !loaded && st.trip != nil:
		tr := st.trip
		st.trip = nil
		if tr.departed == 0 || e.o.Trips == nil {
			return // loaded and unloaded without leaving the site: no trip
		}
		plate := st.info.truck.Plate
		out := &telemetry.Trip{ID: fmt.Sprintf("%s/%d", plate, time.Unix(0, tr.departed).Unix()), Plate: plate,
			Device: device, Permit: tr.permit, DepartedAt: time.Unix(0, tr.departed).UTC(), ArrivedAt: time.Unix(0, now).UTC(),
			DistanceM: math.Round(tr.distM), DurationS: math.Round(float64(now-tr.departed) / 1e9), Violations: tr.violations}
		if out.Device == "" && len(st.info.truck.Devices) > 0 {
			out.Device = st.info.truck.Devices[0]
		}
		if c := st.info.company; c != nil {
			out.Company = c.ID
		}
		if tr.origin >= 0 && int(tr.origin) < len(e.m.site) {
			out.Origin = e.m.site[tr.origin].ID
		}
		where := st.site
		if where < 0 {
			where = st.siteAt(now, 30*time.Second)
		}
		if where >= 0 && e.m.site[where].Kind == config.SiteDisposal {
			out.Disposal = e.m.site[where].ID
		}
		e.met.trips.Inc()
		e.o.Trips.Trip(out)
	}
}

// tripMove adds a fix's step to the open trip's distance: a jump longer
// than 5 km between fixes is a gap or a glitch, not driven.
func (st *truckState) tripMove(e *Engine) {
	tr := st.trip
	if tr == nil || tr.departed == 0 {
		return
	}
	if tr.hasLast {
		if d := e.m.plane.Distance(tr.last, st.pos); d < 5000 {
			tr.distM += d
		}
	}
	tr.last, tr.hasLast = st.pos, true
}

// noteViolation records an alert of this truck on its open trip.
func (st *truckState) noteViolation(rule string, started int64) {
	if st.trip == nil || len(st.trip.violations) >= maxTripViolations {
		return
	}
	st.trip.violations = append(st.trip.violations, telemetry.AlertID(rule, st.info.truck.Plate, time.Unix(0, started)))
}
