package scenario

import (
	"time"

	"github.com/urbanwatch/urbanwatch/config"
)

// The judge's overload, unwashed_exit and spillage (docs/rules.md), on the
// same footing as its other truck rules: true positions against the
// fences and wash areas (moved by the geometry variants), speeds, loads
// and timing as the records carry them, every dwell moved by the time
// variants. Written from the rule definitions, not from package rules.
//
//   - overload: a truck with a load sensor and a rated load whose current
//     load (not a back-filled report) is above rated × (1 + tolerance) while
//     moving at min_speed_kmh or more outside every site, for the dwell;
//     over until the load is at or under the limit for clear_after.
//   - unwashed_exit: from the moment a truck with a load sensor reports a
//     load in a site with a wash area (one without a sensor: from entering
//     a construction site with one), its stays in the wash area, each from
//     the last fix before it entered to the first fix after it left; on
//     leaving the site loaded (without a sensor: having stood still in it)
//     with no stay of min_wash, an event at the fix outside. It ends when
//     the truck enters a site, or clear_after after.
//   - spillage: on every sensors report, the load's peak over the window
//     while moving faster than min_speed_kmh outside every site (a report
//     while slow or in a site starts it afresh); a report at least drop_pct
//     under a loaded peak opens a drop, which a report back at the peak less
//     drop_pct within the window cancels (a glitch) and the first report at
//     or after the window's end confirms: the event, at that report. It ends
//     like unwashed_exit.
type offences struct {
	overload  cond
	wasLoaded bool

	washSite            int   // the site whose wash is being judged, -1 none
	washSince, washBest int64 // in the wash area since (0 = not), longest stay
	washStood           bool  // stood still in the site
	unwashed            bool  // the event is on
	unwashedAt          int64 // … since
	spillPeak           float64
	spillPeakTS         int64
	spillDrop           int64 // a drop waiting for the window to pass, 0 none
	spillFrom           float64
	spilling            bool // the event is on
	spillAt             int64
}

// inWash reports whether the truck is in site's wash area, shrunk by the
// variant's geometry delta.
func (tj *truckJudge) inWash(v, site int) bool {
	s := &tj.j.sites[site]
	return s.hasWash && s.wash.signed(tj.pos, 50) > truckVariants[v].geo
}

// washFrom starts judging the wash at site, if it has a wash area; prev is
// the fix before (0 none: a stay under way then counts as long enough).
func (tj *truckJudge) washFrom(v, site int, prev int64) {
	x := &tj.vars[v]
	x.washSite, x.washSince, x.washBest = -1, 0, 0
	if !tj.j.sites[site].hasWash {
		return
	}
	x.washSite = site
	x.washStood = tj.speed < tj.j.rules.UncoveredLoad.MinSpeedKmh
	if tj.inWash(v, site) {
		x.washSince = max(prev, 1)
	}
}

// washStay follows the stays in the wash area on a fix at ts inside the
// same site as the fix before, prev.
func (tj *truckJudge) washStay(v int, ts, prev int64) {
	x := &tj.vars[v]
	if x.washSite < 0 || x.site != x.washSite {
		return
	}
	x.washStood = x.washStood || tj.speed < tj.j.rules.UncoveredLoad.MinSpeedKmh
	switch in := tj.inWash(v, x.site); {
	case in && x.washSince == 0:
		x.washSince = max(prev, 1)
	case !in && x.washSince != 0:
		x.washBest = max(x.washBest, ts-x.washSince)
		x.washSince = 0
	}
}

// leaveSite judges unwashed_exit on the fix at ts that leaves site.
func (tj *truckJudge) leaveSite(v, site int, ts int64) {
	x := &tj.vars[v]
	if x.washSite != site {
		return
	}
	x.washSite = -1
	if x.washSince != 0 {
		x.washBest = max(x.washBest, ts-x.washSince)
		x.washSince = 0
	}
	loaded := tj.known && tj.sens.HasLoad && tj.sens.LoadKg >= tj.j.rules.UncoveredLoad.LoadedKg
	if !tj.hasLoadSensor {
		loaded = tj.j.sites[site].kind == config.SiteConstruction && x.washStood
	}
	minWash := tj.j.rules.UnwashedExit.MinWash + truckVariants[v].dwell
	if loaded && x.washBest < int64(minWash) && !x.unwashed {
		x.unwashed, x.unwashedAt = true, ts
		tj.emit(v, RuleUnwashedExit, ts)
	}
}

// spill follows the load for spillage on an in-order sensors report.
func (tj *truckJudge) spill(v int, ts int64, kg float64) {
	r := &tj.j.rules.Spillage
	x := &tj.vars[v]
	within := int64(r.Within)
	keep := 1 - r.DropPct/100
	if x.spillDrop != 0 {
		switch {
		case kg >= x.spillFrom*keep && ts-x.spillDrop <= within:
			x.spillDrop = 0 // a glitch
		case ts-x.spillDrop >= within:
			x.spilling, x.spillAt = true, x.spillDrop
			x.spillDrop = 0
			tj.emit(v, RuleSpillage, ts)
		default:
			return
		}
	}
	fast := tj.speed > r.MinSpeedKmh
	switch {
	case kg >= x.spillPeak || ts-x.spillPeakTS > within || !fast || x.site >= 0:
		x.spillPeak, x.spillPeakTS = kg, ts
	case x.spillPeak >= tj.j.rules.UncoveredLoad.LoadedKg && kg <= x.spillPeak*keep && !x.spilling:
		x.spillDrop, x.spillFrom = ts, x.spillPeak
	}
}

// evaluateOffences runs overload, and ends the events, for variant v at
// now; loaded is the truck's state for the variant.
func (tj *truckJudge) evaluateOffences(v int, now int64, loaded bool) {
	r := &tj.j.rules
	x := &tj.vars[v]
	vr := truckVariants[v]
	outside := x.site < 0
	if tj.rated > 0 && tj.hasLoadSensor {
		or := &r.Overload
		limit := tj.rated * (1 + or.TolerancePct/100)
		has := tj.known && tj.sens.HasLoad
		over := has && !tj.lagging && tj.sens.LoadKg > limit
		if x.overload.update(now, over && tj.speed >= or.MinSpeedKmh && outside, has && tj.sens.LoadKg <= limit,
			or.Dwell+vr.dwell, or.ClearAfter-vr.dwell) {
			tj.emit(v, RuleOverload, now)
		}
	}
	for _, ev := range []struct {
		on    *bool
		since int64
		clear time.Duration
	}{{&x.unwashed, x.unwashedAt, r.UnwashedExit.ClearAfter}, {&x.spilling, x.spillAt, r.Spillage.ClearAfter}} {
		if *ev.on && (!outside || now-ev.since >= int64(ev.clear)) {
			*ev.on = false
		}
	}
	if loaded && !x.wasLoaded && tj.hasLoadSensor && x.site >= 0 {
		tj.washFrom(v, x.site, now) // loaded here: the wash counts from now
	}
	x.wasLoaded = loaded
}
