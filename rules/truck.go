package rules

import (
	"math"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Rule ids of the truck rules.
const (
	RuleUncoveredLoad      = "uncovered_load"       // 不密闭运输
	RuleOffRoute           = "off_route"            // 偏离路线
	RuleIllegalDumping     = "illegal_dumping"      // 随意倾倒
	RuleOutsidePermitHours = "outside_permit_hours" // 超时段运输
	RuleNoPermit           = "no_permit"            // 无证运输
	RuleSignalLost         = "signal_lost"          // 信号中断
	RuleZoneViolation      = "zone_violation"
)

// sensorSample is one sensors message.
type sensorSample struct {
	ts      int64
	loadKg  float32
	cover   telemetry.Cover
	body    telemetry.Body
	hasLoad bool
}

// sensorLag is how far behind the newest fix a sensors report may arrive
// and still count as current.
const sensorLag = 30 * time.Second

// sensorRing keeps the last few sensor states so a fix joins to the state at
// or before its own time even when the two streams interleave.
const sensorRing = 4

// truckState is everything the rules remember of one truck. It is kept
// small (under 1 KiB): 20,000 trucks must fit beside the geometry.
type truckState struct {
	info *truckInfo

	// Last fix that moved the truck, and its derived facts.
	fixTS    int64
	validTS  int64 // last valid fix (for signal_lost)
	heardWM  int64 // the watermark when it arrived
	sensTS   int64 // newest sensors message
	pos      geo.XY
	lon, lat float64
	speed    float32
	site     int32 // index of the site the truck is in, -1 outside
	lastSite int32 // the site it last left, -1 none

	sens  [sensorRing]sensorSample
	nSens uint8

	hasLoadSensor bool
	sensLagging   bool // the newest sensors report arrived far behind the fixes
	tripLoaded    bool // no load sensor: the trip began at a construction site

	// Dumping.
	raisedSince int64 // body raised since, 0 = down
	peakKg      float32
	peakTS      int64
	dumpDone    bool // this raise (or drop) was already judged
	dump        cond // the illegal_dumping alert; fired once per dump
	dumpTrigger string

	uncovered, offRoute, hours, noPermit cond

	// signal_lost.
	signal cond
	armed  bool  // last valid fix was moving or loaded outside a site
	queued int64 // the live timer entry, 0 none, -1 removed

	zones []zoneCond

	// Recent stays in sites, so a dump reported late is judged where it
	// happened, not where the truck is when the report arrives.
	visits [visitRing]visit

	offenceState
}

// zoneCond is a zone rule's state for one truck.
type zoneCond struct {
	zone int32
	c    cond
}

func newTruckState(ti *truckInfo) *truckState {
	st := &truckState{info: ti, site: -1, lastSite: -1}
	st.washSite = -1
	return st
}

// subject describes the truck for an alert.
func (st *truckState) subject(e *Engine, device string) telemetry.Subject {
	s := telemetry.Subject{Kind: telemetry.SubjectTruck, ID: st.info.truck.Plate, Name: st.info.truck.Plate,
		Device: device}
	if len(st.info.truck.Devices) > 0 && device == "" {
		s.Device = st.info.truck.Devices[0]
	}
	if c := st.info.company; c != nil {
		s.Company, s.CompanyName = c.ID, c.Name
	}
	if st.lon != 0 || st.lat != 0 {
		s.District = e.m.city.DistrictAt(st.lon, st.lat)
	}
	return s
}

func (st *truckState) location() telemetry.Location {
	return telemetry.Location{Lat: st.lat, Lon: st.lon}
}

// sensorsAt returns the sensor state at or before ts, and whether one is
// known.
func (st *truckState) sensorsAt(ts int64) (sensorSample, bool) {
	var best sensorSample
	found := false
	for i := range int(st.nSens) {
		s := st.sens[i]
		if s.ts <= ts && (!found || s.ts > best.ts) {
			best, found = s, true
		}
	}
	return best, found
}

// addSensors inserts a sample, evicting the oldest.
func (st *truckState) addSensors(s sensorSample) {
	if int(st.nSens) < sensorRing {
		st.sens[st.nSens] = s
		st.nSens++
		return
	}
	old := 0
	for i := 1; i < sensorRing; i++ {
		if st.sens[i].ts < st.sens[old].ts {
			old = i
		}
	}
	if s.ts > st.sens[old].ts {
		st.sens[old] = s
	}
}

// visit is a stay inside a site, from the fixes that showed it.
type visit struct {
	from, to int64
	site     int32
}

const visitRing = 4

// noteVisit records that the truck was in site at ts, from an in-order or a
// late fix, merging with a stay of the same site within a minute.
func (st *truckState) noteVisit(site int32, ts int64) {
	const merge = int64(time.Minute)
	for i := range st.visits {
		v := &st.visits[i]
		if v.to != 0 && v.site == site && ts >= v.from-merge && ts <= v.to+merge {
			v.from, v.to = min(v.from, ts), max(v.to, ts)
			return
		}
	}
	old := 0
	for i := range st.visits {
		if st.visits[i].to < st.visits[old].to {
			old = i
		}
	}
	st.visits[old] = visit{from: ts, to: ts, site: site}
}

// siteAt returns the site the truck was in around ts (within slack), from
// its recent stays, or -1.
func (st *truckState) siteAt(ts int64, slack time.Duration) int32 {
	for _, v := range st.visits {
		if v.to != 0 && ts >= v.from-int64(slack) && ts <= v.to+int64(slack) {
			return v.site
		}
	}
	return -1
}

// loaded reports whether the truck carries a load, from its load sensor or,
// without one, from where its trip began.
func (st *truckState) loaded(r *config.RuleSettings, s sensorSample, known bool) bool {
	if st.hasLoadSensor {
		return known && s.hasLoad && float64(s.loadKg) >= r.UncoveredLoad.LoadedKg
	}
	return st.tripLoaded
}

// onFix takes one GPS fix.
func (st *truckState) onFix(e *Engine, device string, ts int64, f *telemetry.Fix) {
	r := &e.m.rules
	if !f.Valid || f.Sats < r.MinSats {
		e.met.skipped.WithLabelValues("invalid_fix").Inc()
		return
	}
	if ts < st.fixTS {
		if st.fixTS-ts > int64(r.ReorderWindow) {
			e.met.skipped.WithLabelValues("too_late").Inc()
			return
		}
		// A late fix does not move the truck, but where it was counts
		// when a dump of that time is judged.
		e.met.skipped.WithLabelValues("late").Inc()
		e.scratch = e.m.sites.Containing(e.m.plane.Project(f.Lon, f.Lat), e.scratch[:0])
		if len(e.scratch) > 0 {
			st.noteVisit(e.scratch[0], ts)
		}
		return
	}
	prevFix := st.fixTS
	st.fixTS, st.validTS, st.heardWM = ts, ts, e.wm
	st.lon, st.lat, st.speed = f.Lon, f.Lat, float32(f.SpeedKmh)
	st.pos = e.m.plane.Project(f.Lon, f.Lat)
	e.scratch = e.m.sites.Containing(st.pos, e.scratch[:0])
	site := int32(-1)
	if len(e.scratch) > 0 {
		site = e.scratch[0]
	}
	if site >= 0 {
		st.noteVisit(site, ts)
	}
	st.tripMove(e)
	if site != st.site {
		if st.site >= 0 {
			// Leaving: loaded by the sensor, or, without one, leaving a
			// construction site.
			s, known := st.sensorsAt(ts)
			loadedOut := st.loaded(r, s, known)
			if !st.hasLoadSensor {
				loadedOut = e.m.site[st.site].Kind == config.SiteConstruction
			}
			st.exitSite(e, device, st.site, ts, loadedOut)
			st.lastSite = st.site
			if !st.hasLoadSensor {
				st.tripLoaded = e.m.site[st.site].Kind == config.SiteConstruction
			}
		}
		if site >= 0 && !st.hasLoadSensor && e.m.site[site].Kind == config.SiteConstruction {
			st.startWash(e, site, ts, prevFix) // judged from entering: no sensor says when it was loaded
		}
		st.site = site
	} else {
		st.washStep(e, ts, prevFix)
	}
	if st.signal.firing {
		st.signal.firing = false
		st.signal.version++
		e.emit(RuleSignalLost, telemetry.AlertResolved, st.signal.version, r.SignalLost.Severity,
			st.subject(e, device), st.signal.started, ts, st.location(),
			map[string]any{"silent_s": math.Round(float64(ts-st.signal.started) / 1e9)})
	}
	st.evaluate(e, device, ts, 0)
	s, known := st.sensorsAt(ts)
	st.armed = site < 0 && (float64(st.speed) >= r.UncoveredLoad.MinSpeedKmh || st.loaded(r, s, known))
	if st.armed {
		e.schedule(&st.queued, st.silentFrom()+int64(r.SignalLost.After), timer{truck: st})
	}
}

// onSensors takes one sensors message.
func (st *truckState) onSensors(e *Engine, device string, ts int64, s *telemetry.SensorState) {
	r := &e.m.rules
	if ts < st.sensTS && st.sensTS-ts > int64(r.ReorderWindow) {
		e.met.skipped.WithLabelValues("too_late").Inc()
		return
	}
	inOrder := ts >= st.sensTS
	// A report far behind the truck's newest fix is back-filled history: it
	// says what the sensors were then, not what they are now, so until a
	// current report arrives it cannot raise a condition on its own.
	st.sensLagging = st.fixTS-ts > int64(sensorLag)
	if inOrder {
		st.sensTS = ts
	}
	prev, hadPrev := st.sensorsAt(ts)
	cur := sensorSample{ts: ts, cover: s.Cover, body: s.Body, loadKg: float32(s.LoadKg), hasLoad: s.HasLoad}
	if cur.cover == telemetry.CoverUnknown && hadPrev {
		cur.cover = prev.cover
	}
	if cur.body == telemetry.BodyUnknown && hadPrev {
		cur.body = prev.body
	}
	st.addSensors(cur)
	if s.HasLoad {
		st.hasLoadSensor = true
	}
	// Body transitions, at the sensor's own time; a sample older than the
	// newest one already seen cannot undo a later state.
	switch {
	case !inOrder:
	case cur.body == telemetry.BodyRaised && st.raisedSince == 0:
		st.raisedSince, st.dumpDone = ts, false
	case cur.body != telemetry.BodyRaised && cur.body != telemetry.BodyUnknown:
		st.raisedSince = 0
	}
	if s.HasLoad && inOrder {
		st.spillSensors(e, device, ts, float32(s.LoadKg))
	}
	// Load drop.
	if s.HasLoad {
		kg := float32(s.LoadKg)
		within := int64(r.IllegalDumping.LoadDropWithin)
		if kg >= st.peakKg || ts-st.peakTS > within {
			st.peakKg, st.peakTS = kg, ts
		} else if float64(st.peakKg) >= r.UncoveredLoad.LoadedKg &&
			float64(kg) <= float64(st.peakKg)*(1-r.IllegalDumping.LoadDropPct/100) &&
			float64(st.speed) < r.IllegalDumping.MaxSpeedKmh {
			// Judged where the report finds the load fallen: the peak may be
			// minutes old and elsewhere (a spill on the road, then the tip
			// in the disposal site).
			st.judgeDump(e, device, ts, st.peakTS, ts, map[string]any{
				"trigger": "load_drop", "load_before_kg": float64(st.peakKg), "load_after_kg": float64(kg),
				"drop_pct": round1(100 * (1 - float64(kg)/float64(st.peakKg))), "within_s": (ts - st.peakTS) / 1e9,
				"threshold_pct": r.IllegalDumping.LoadDropPct,
			})
			st.peakKg, st.peakTS = kg, ts
		}
	}
	from := int64(0)
	now := ts
	if ts < st.fixTS {
		// A sensor change that arrives after later fixes: the conditions it
		// changes began at its own time.
		from, now = ts, st.fixTS
	}
	if st.fixTS != 0 {
		st.evaluate(e, device, now, from)
	}
}

// evaluate runs the condition rules at event time now with the latest fix
// and the sensor state at now.
func (st *truckState) evaluate(e *Engine, device string, now, from int64) {
	r := &e.m.rules
	s, known := st.sensorsAt(now)
	loaded := st.loaded(r, s, known)
	speed := float64(st.speed)
	outside := st.site < 0

	// Dumping by a raised body.
	if st.raisedSince != 0 && !st.dumpDone && now-st.raisedSince >= int64(r.IllegalDumping.RaisedFor) {
		st.judgeDump(e, device, now, st.raisedSince, st.raisedSince, map[string]any{
			"trigger": "body_raised", "raised_s": (now - st.raisedSince) / 1e9,
			"threshold_s": r.IllegalDumping.RaisedFor.Seconds(),
		})
	}
	if st.dump.firing && st.raisedSince == 0 && speed >= r.UncoveredLoad.MinSpeedKmh {
		st.dump.version++
		st.dump.firing = false
		e.emit(RuleIllegalDumping, telemetry.AlertResolved, st.dump.version, r.IllegalDumping.Severity,
			st.subject(e, device), st.dump.started, now, st.location(), map[string]any{"trigger": st.dumpTrigger})
	}

	// Uncovered load: raised by loaded + cover open/fault + moving +
	// outside; cleared by the cover closed for clear_after or a site.
	bad := known && !st.sensLagging && (s.cover == telemetry.CoverOpen || s.cover == telemetry.CoverFault)
	ul := &r.UncoveredLoad
	if st.uncovered.firing && !outside {
		st.resolve(e, device, RuleUncoveredLoad, &st.uncovered, ul.Severity, now, map[string]any{"reason": "entered_site"})
	} else {
		closed := known && s.cover == telemetry.CoverClosed
		switch st.uncovered.update(now, loaded && bad && speed >= ul.MinSpeedKmh && outside, closed || !loaded, from, ul.Dwell, ul.ClearAfter) {
		case raise:
			st.fire(e, device, RuleUncoveredLoad, &st.uncovered, ul.Severity, now, map[string]any{
				"cover": s.cover.String(), "speed_kmh": round1(speed), "load_kg": loadDetail(st, s),
				"dwell_s": ul.Dwell.Seconds(), "min_speed_kmh": ul.MinSpeedKmh, "loaded_kg": ul.LoadedKg,
			})
		case resolve:
			st.emitResolved(e, device, RuleUncoveredLoad, &st.uncovered, ul.Severity, now, map[string]any{"reason": "cover_closed"})
		}
	}

	// Permits: valid today, window open, routes.
	var valid, open bool
	ti := st.info
	t := time.Unix(0, now)
	for i := range ti.permits {
		v, o := ti.permits[i].p.Check(t, e.m.loc)
		valid = valid || v
		open = open || o
	}
	mr := &r.NoPermit
	moving := speed >= mr.MinSpeedKmh
	if !valid {
		// Speed and place alone: a late sensor message cannot date it.
		st.condRule(e, device, RuleNoPermit, &st.noPermit, mr, now, 0, moving && outside, !moving || !outside, nil)
	} else if st.noPermit.firing {
		st.resolve(e, device, RuleNoPermit, &st.noPermit, mr.Severity, now, map[string]any{"reason": "permit_valid"})
	}
	hr := &r.OutsidePermitHours
	if valid && !open {
		st.condRule(e, device, RuleOutsidePermitHours, &st.hours, hr, now, 0,
			speed >= hr.MinSpeedKmh && outside, speed < hr.MinSpeedKmh || !outside, windowDetails(ti))
	} else if st.hours.firing {
		st.resolve(e, device, RuleOutsidePermitHours, &st.hours, hr.Severity, now, map[string]any{"reason": "window_open"})
	}

	// Off route: loaded and moving outside every corridor of a valid permit.
	or := &r.OffRoute
	if valid && outside {
		inCorridor, corridor := st.inCorridor(e, t)
		switch st.offRoute.update(now, loaded && speed >= or.MinSpeedKmh && !inCorridor, inCorridor, from, or.Dwell, or.ClearAfter) {
		case raise:
			d, rt := st.routeDistance(e, t)
			st.fire(e, device, RuleOffRoute, &st.offRoute, or.Severity, now, map[string]any{
				"distance_m": math.Round(d), "corridor_m": corridor, "nearest_route": rt,
				"speed_kmh": round1(speed), "dwell_s": or.Dwell.Seconds(),
			})
		case resolve:
			st.emitResolved(e, device, RuleOffRoute, &st.offRoute, or.Severity, now, map[string]any{"reason": "back_on_route"})
		}
	} else if st.offRoute.firing && !outside {
		st.resolve(e, device, RuleOffRoute, &st.offRoute, or.Severity, now, map[string]any{"reason": "entered_site"})
	} else if !st.offRoute.firing {
		st.offRoute.since = 0
	}

	st.evaluateZones(e, device, now, from, s, known && !st.sensLagging, loaded)
	st.evaluateOverload(e, device, now, from, s, known)
	st.endEvents(e, device, now)
	if loaded && !st.wasLoaded && st.hasLoadSensor && st.site >= 0 {
		st.startWash(e, st.site, now, now) // loaded here: its wash counts from now
	}
	st.tripStep(e, device, now, loaded)
}

// condRule runs a MovingRule-shaped condition.
func (st *truckState) condRule(e *Engine, device, rule string, c *cond, mr *config.MovingRule, now, from int64,
	raiseHolds, clearHolds bool, extra map[string]any) {
	switch c.update(now, raiseHolds, clearHolds, from, mr.Dwell, mr.ClearAfter) {
	case raise:
		d := map[string]any{"speed_kmh": round1(float64(st.speed)), "min_speed_kmh": mr.MinSpeedKmh,
			"dwell_s": mr.Dwell.Seconds()}
		for k, v := range extra {
			d[k] = v
		}
		st.fire(e, device, rule, c, mr.Severity, now, d)
	case resolve:
		st.emitResolved(e, device, rule, c, mr.Severity, now, map[string]any{"reason": "stopped"})
	}
}

// inCorridor reports whether the truck is within the corridor of a route
// of a permit valid at t, and the widest corridor it was judged against.
func (st *truckState) inCorridor(e *Engine, t time.Time) (bool, float64) {
	widest := 0.0
	for i := range st.info.permits {
		p := &st.info.permits[i]
		if v, _ := p.p.Check(t, e.m.loc); !v {
			continue
		}
		widest = math.Max(widest, p.corridorM)
		for _, rt := range p.routes {
			if _, ok := e.m.routes.Within(rt, st.pos, p.corridorM); ok {
				return true, p.corridorM
			}
		}
	}
	return false, widest
}

// routeDistance is the distance to the nearest permitted route, for an
// alert's details.
func (st *truckState) routeDistance(e *Engine, t time.Time) (float64, string) {
	best, name := math.Inf(1), ""
	for i := range st.info.permits {
		p := &st.info.permits[i]
		if v, _ := p.p.Check(t, e.m.loc); !v {
			continue
		}
		for _, rt := range p.routes {
			if d := e.m.routes.Distance(rt, st.pos); d < best {
				best, name = d, e.m.city.Routes[rt].ID
			}
		}
	}
	return best, name
}

// judgeDump decides whether a dump that began at started, and happened
// where the truck was at at, is legal (inside
// a disposal or origin site of a permit), and raises illegal_dumping once
// if not.
func (st *truckState) judgeDump(e *Engine, device string, now, started, at int64, details map[string]any) {
	if st.dumpDone || st.dump.firing {
		return
	}
	st.dumpDone = true
	if !st.hasLoadSensor {
		st.tripLoaded = false
	}
	// Judge where the dump happened: where the truck is now if the report is
	// current, else where its fixes put it then.
	where := st.site
	if st.fixTS-at > int64(e.m.rules.IllegalDumping.RaisedFor)+int64(10*time.Second) {
		where = st.siteAt(at, 30*time.Second)
	}
	if where < 0 {
		where = st.siteAt(at, 0)
	}
	if where >= 0 && st.dumpAllowedAt(e, where, time.Unix(0, now)) {
		return
	}
	r := &e.m.rules.IllegalDumping
	details["speed_kmh"] = round1(float64(st.speed))
	if st.site >= 0 {
		details["site"] = e.m.site[st.site].ID
		details["site_name"] = e.m.site[st.site].Name
	}
	st.dump = cond{firing: true, started: started}
	st.dumpTrigger, _ = details["trigger"].(string)
	st.dump.version++
	e.emit(RuleIllegalDumping, telemetry.AlertFiring, st.dump.version, r.Severity, st.subject(e, device),
		started, now, st.location(), details)
	st.noteViolation(RuleIllegalDumping, started)
}

// dumpAllowedAt reports whether tipping at site is legal for this truck:
// one of its valid permits names it as origin or disposal; a truck without
// a valid permit may tip only at a disposal site.
func (st *truckState) dumpAllowedAt(e *Engine, site int32, t time.Time) bool {
	anyValid := false
	for i := range st.info.permits {
		p := &st.info.permits[i]
		if v, _ := p.p.Check(t, e.m.loc); !v {
			continue
		}
		anyValid = true
		for _, s := range p.allowed {
			if s == site {
				return true
			}
		}
	}
	return !anyValid && e.m.site[site].Kind == config.SiteDisposal
}

// evaluateZones runs the zone rules.
func (st *truckState) evaluateZones(e *Engine, device string, now, from int64, s sensorSample, known, loaded bool) {
	zr := &e.m.rules.ZoneViolation
	var in []int32
	if e.m.zones.Len() > 0 {
		in = e.m.zones.Containing(st.pos, e.scratch[:0])
		e.scratch = in[:0]
	}
	t := time.Unix(0, now)
	for _, z := range in {
		zone := e.m.zone[z]
		if !zone.Active(t, e.m.loc) || !zoneMatch(&zone.Condition, float64(st.speed), s, known, loaded) {
			continue
		}
		found := false
		for i := range st.zones {
			if st.zones[i].zone == z {
				found = true
			}
		}
		if !found {
			st.zones = append(st.zones, zoneCond{zone: z})
		}
	}
	kept := st.zones[:0]
	for i := range st.zones {
		zc := st.zones[i]
		zone := e.m.zone[zc.zone]
		holds := contains32(in, zc.zone) && zone.Active(t, e.m.loc) &&
			zoneMatch(&zone.Condition, float64(st.speed), s, known, loaded)
		zfrom := from
		if c := &zone.Condition; len(c.Cover) == 0 && len(c.Body) == 0 && c.Loaded == nil {
			zfrom = 0 // a late sensor message cannot date a condition it plays no part in
		}
		switch zc.c.update(now, holds, !holds, zfrom, zr.Dwell, zr.ClearAfter) {
		case raise:
			d := map[string]any{"zone": zone.ID, "zone_name": zone.Name, "speed_kmh": round1(float64(st.speed)),
				"dwell_s": zr.Dwell.Seconds()}
			if zone.Condition.MaxSpeedKmh > 0 {
				d["max_speed_kmh"] = zone.Condition.MaxSpeedKmh
			}
			if known {
				d["cover"], d["body"] = s.cover.String(), s.body.String()
			}
			st.fire(e, device, RuleZoneViolation+":"+zone.ID, &zc.c, zone.Severity, now, d)
		case resolve:
			st.emitResolved(e, device, RuleZoneViolation+":"+zone.ID, &zc.c, zone.Severity, now,
				map[string]any{"zone": zone.ID, "zone_name": zone.Name})
		}
		if !zc.c.idle() {
			kept = append(kept, zc)
		}
	}
	clear(st.zones[len(kept):])
	st.zones = kept
}

func contains32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// zoneMatch reports whether a truck matches every predicate a zone sets.
func zoneMatch(c *config.ZoneCondition, speed float64, s sensorSample, known, loaded bool) bool {
	if c.MaxSpeedKmh > 0 && speed <= c.MaxSpeedKmh {
		return false
	}
	if c.MinSpeedKmh > 0 && speed < c.MinSpeedKmh {
		return false
	}
	if c.Loaded != nil && *c.Loaded != loaded {
		return false
	}
	if len(c.Cover) > 0 && (!known || !containsStr(c.Cover, s.cover.String())) {
		return false
	}
	if len(c.Body) > 0 && (!known || !containsStr(c.Body, s.body.String())) {
		return false
	}
	return true
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// silentFrom is when the truck's silence began on the watermark's scale:
// its last valid fix, or, if that fix arrived long after its own time (a
// terminal whose clock lags, a back-filled buffer), the watermark when it
// arrived. A truck that is talking is not silent, whatever its timestamps.
func (st *truckState) silentFrom() int64 { return max(st.validTS, st.heardWM) }

// onTimer checks the signal_lost deadline.
func (st *truckState) onTimer(e *Engine) {
	if st.queued < 0 || !st.armed || st.signal.firing {
		return
	}
	after := int64(e.m.rules.SignalLost.After)
	due := st.silentFrom() + after
	if due > e.wm {
		e.schedule(&st.queued, due, timer{truck: st})
		return
	}
	st.signal.firing, st.signal.started = true, st.validTS
	st.signal.version = 1
	e.emit(RuleSignalLost, telemetry.AlertFiring, 1, e.m.rules.SignalLost.Severity, st.subject(e, ""),
		st.validTS, due, st.location(), map[string]any{
			"last_fix": time.Unix(0, st.validTS).UTC().Format(time.RFC3339), "after_s": e.m.rules.SignalLost.After.Seconds(),
			"speed_kmh": round1(float64(st.speed)),
		})
	st.noteViolation(RuleSignalLost, st.validTS)
}

// fire announces a condition that has just started firing.
func (st *truckState) fire(e *Engine, device, rule string, c *cond, severity string, now int64, details map[string]any) {
	c.version = 1
	e.emit(rule, telemetry.AlertFiring, 1, severity, st.subject(e, device), c.started, now, st.location(), details)
	st.noteViolation(rule, c.started)
}

// emitResolved announces a condition update returned resolve for.
func (st *truckState) emitResolved(e *Engine, device, rule string, c *cond, severity string, now int64, details map[string]any) {
	c.version++
	e.emit(rule, telemetry.AlertResolved, c.version, severity, st.subject(e, device), c.started, now,
		st.location(), details)
}

// resolve ends a firing condition at once and announces it.
func (st *truckState) resolve(e *Engine, device, rule string, c *cond, severity string, now int64, details map[string]any) {
	if c.forceResolve() {
		st.emitResolved(e, device, rule, c, severity, now, details)
	}
}

// removed resolves every firing alert of a truck that left the
// configuration.
func (st *truckState) removed(e *Engine) {
	st.queued = -1
	d := func() map[string]any { return map[string]any{"reason": "removed from configuration"} }
	r := &e.m.rules
	now := e.wm
	st.resolve(e, "", RuleUncoveredLoad, &st.uncovered, r.UncoveredLoad.Severity, now, d())
	st.resolve(e, "", RuleOffRoute, &st.offRoute, r.OffRoute.Severity, now, d())
	st.resolve(e, "", RuleOutsidePermitHours, &st.hours, r.OutsidePermitHours.Severity, now, d())
	st.resolve(e, "", RuleNoPermit, &st.noPermit, r.NoPermit.Severity, now, d())
	st.resolve(e, "", RuleSignalLost, &st.signal, r.SignalLost.Severity, now, d())
	st.resolve(e, "", RuleIllegalDumping, &st.dump, r.IllegalDumping.Severity, now, d())
	st.resolve(e, "", RuleOverload, &st.overload, r.Overload.Severity, now, d())
	st.resolve(e, "", RuleUnwashedExit, &st.unwashed, r.UnwashedExit.Severity, now, d())
	st.resolve(e, "", RuleSpillage, &st.spill, r.Spillage.Severity, now, d())
	for i := range st.zones {
		if z := st.zones[i].zone; int(z) < len(e.m.zone) {
			st.resolve(e, "", RuleZoneViolation+":"+e.m.zone[z].ID, &st.zones[i].c, e.m.zone[z].Severity, now, d())
		}
	}
}

// ruleID strips a zone suffix: every zone raises zone_violation.
func ruleID(rule string) string {
	if len(rule) > len(RuleZoneViolation) && rule[:len(RuleZoneViolation)+1] == RuleZoneViolation+":" {
		return RuleZoneViolation
	}
	return rule
}

func windowDetails(ti *truckInfo) map[string]any {
	var ws []string
	for _, p := range ti.permits {
		for _, w := range p.p.Windows {
			ws = append(ws, w.String())
		}
	}
	return map[string]any{"windows": ws}
}

func loadDetail(st *truckState, s sensorSample) any {
	if st.hasLoadSensor {
		return float64(s.loadKg)
	}
	return nil
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
