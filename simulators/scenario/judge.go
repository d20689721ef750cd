package scenario

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The judge derives the ground truth of a recorded stream: it applies the
// rule definitions (docs/rules.md, thresholds from the city's rules) to
// what the engine is fed, with the true values in place of the measured
// ones where a model knows them: a truck's true position instead of its
// noisy fix, a gauge's true rain instead of its bucket tips, a depth point's
// true depth instead of its noisy reading. Speeds, sensor states and
// timing are taken from the records as sent (speed noise is 0.3 km/h and
// the sensors are digital).
//
// It samples as docs/rules.md says the engine does: a truck only moves on
// a valid fix (≥ min_sats satellites) that is not older than one already
// taken (a fix back-filled after a tunnel is not), and its sensor state is
// that of the last sensors message; a dump is judged where it began.
//
// Whether a rule fires can hinge on measurement noise or on what arrived
// late: a dwell that lasts within a fix of its threshold, a position within
// metres of a fence or a corridor, a rain total within a bucket tip of a
// threshold, a condition that began inside a signal gap. So beside the base
// judgement the judge runs variants, with the geometry moved by geoDelta
// either way, the dwells by timeDelta, the rain thresholds by rainDelta and
// the depth thresholds by depthDelta, and, for trucks, a shadow judge on
// complete data (every record in event-time order, as if nothing had been
// delayed). An event they disagree on is kept as Optional, and one only
// some of them raise is added as Optional.
const (
	geoDelta   = 8.0 // metres: about 2σ of the simulated GPS noise
	timeDelta  = time.Second
	rainDelta  = 0.3 // mm: a bucket tip (0.2 mm) plus rounding
	depthDelta = 0.8 // cm: 4σ of the depth sensor noise

	truckTol = 60 * time.Second
	gaugeTol = 5 * time.Minute
)

// The rule ids (docs/rules.md).
const (
	RuleUncoveredLoad      = "uncovered_load"
	RuleOffRoute           = "off_route"
	RuleIllegalDumping     = "illegal_dumping"
	RuleOutsidePermitHours = "outside_permit_hours"
	RuleNoPermit           = "no_permit"
	RuleSignalLost         = "signal_lost"
	RuleZoneViolation      = "zone_violation"
	RuleRainstorm          = "rainstorm"
	RuleHeavyRain          = "heavy_rain_1h"
	RuleWaterlogging       = "waterlogging"
	RuleSensorOffline      = "sensor_offline"
	RuleOverload           = "overload"
	RuleUnwashedExit       = "unwashed_exit"
	RuleSpillage           = "spillage"
)

// truckVariants are the truck judge's variants; the first is the base.
var truckVariants = [...]struct {
	geo   float64       // > 0: fences and zones smaller, corridors narrower
	dwell time.Duration // added to every dwell, taken from every clear time
}{{0, 0}, {geoDelta, 0}, {-geoDelta, 0}, {0, -timeDelta}, {0, timeDelta}}

const nTruckVariants = len(truckVariants)

// gaugeVariants shift the gauge thresholds, in units of rainDelta or
// depthDelta; the first is the base.
var gaugeVariants = [...]float64{0, 1, -1}

const nGaugeVariants = len(gaugeVariants)

// event is one alert raised by one variant.
type event struct {
	rule string
	at   int64 // Unix ns
}

// judge holds the city as the rules see it and every subject's state.
type judge struct {
	rules  config.RuleSettings
	loc    *time.Location
	pl     plane
	sites  []jsite
	zones  []jzone
	routes map[string]polyline

	trucks    map[string]*truckJudge // by device
	truckList []*truckJudge
	gauges    map[string]*gaugeJudge
	gaugeList []*gaugeJudge

	// posAt, if set, gives a truck's true position at any fix time: a
	// dump reported late (a back-filled body or load change) is judged
	// where it happened, not where the truck is when the report arrives.
	posAt func(device string, ts int64) (orb.Point, bool)
}

type jsite struct {
	id      string
	kind    config.SiteKind
	area    area
	wash    area // the wash area, if hasWash
	hasWash bool
}

type jzone struct {
	z    *config.Zone
	area area
}

// newJudge compiles c (validated or not: missing rules take the defaults).
func newJudge(c *config.City) (*judge, error) {
	j := &judge{rules: c.Rules, routes: map[string]polyline{}, trucks: map[string]*truckJudge{},
		gauges: map[string]*gaugeJudge{}}
	if j.rules == (config.RuleSettings{}) {
		j.rules = config.DefaultRules()
	}
	j.loc = c.Location
	if j.loc == nil {
		tz := c.TimeZone
		if tz == "" {
			tz = "Asia/Shanghai"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("judge: %w", err)
		}
		j.loc = loc
	}
	j.pl = newPlane(119.16, 36.71)
	if len(c.Sites) > 0 {
		ctr := c.Sites[0].Area.Bound().Center()
		j.pl = newPlane(ctr[0], ctr[1])
	}
	siteIdx := map[string]int{}
	for _, s := range c.Sites {
		siteIdx[s.ID] = len(j.sites)
		js := jsite{id: s.ID, kind: s.Kind, area: newArea(j.pl, s.Area)}
		if len(s.WashArea) > 0 {
			js.wash, js.hasWash = newArea(j.pl, s.WashArea), true
		}
		j.sites = append(j.sites, js)
	}
	for i := range c.Zones {
		j.zones = append(j.zones, jzone{z: &c.Zones[i], area: newArea(j.pl, c.Zones[i].Area.Area)})
	}
	for _, r := range c.Routes {
		l := make(polyline, len(r.Path))
		for i, p := range r.Path {
			l[i] = j.pl.project(p)
		}
		j.routes[r.ID] = l
	}
	byPlate := map[string]*truckJudge{}
	for _, t := range c.Trucks {
		tj := j.newTruckJudge(t, nTruckVariants)
		tj.shadow = j.newTruckJudge(t, 1)
		byPlate[tj.plate] = tj
		j.truckList = append(j.truckList, tj)
		for _, d := range t.Devices {
			j.trucks[d] = tj
		}
	}
	for i := range c.Permits {
		p := &c.Permits[i]
		tj := byPlate[config.NormalizePlate(p.Truck)]
		if tj == nil {
			continue
		}
		jp := jpermit{p: p, corridor: p.CorridorM}
		if jp.corridor <= 0 {
			jp.corridor = j.rules.OffRoute.CorridorM
		}
		for _, id := range p.Routes {
			if l, ok := j.routes[id]; ok {
				jp.routes = append(jp.routes, l)
			}
		}
		for _, ids := range [][]string{p.Origins, p.Disposal} {
			for _, id := range ids {
				if k, ok := siteIdx[id]; ok {
					jp.allowed = append(jp.allowed, k)
				}
			}
		}
		tj.permits = append(tj.permits, jp)
		tj.shadow.permits = tj.permits
	}
	for i := range c.Gauges {
		g := &c.Gauges[i]
		gj := &gaugeJudge{j: j, device: g.Device, warn: j.rules.Waterlogging.WarnCM, close: j.rules.Waterlogging.CloseCM}
		if g.WarnCM > 0 {
			gj.warn = g.WarnCM
		}
		if g.CloseCM > 0 {
			gj.close = g.CloseCM
		}
		j.gauges[g.Device] = gj
		j.gaugeList = append(j.gaugeList, gj)
	}
	return j, nil
}

// newTruckJudge makes the judge of a truck with its first n variants.
func (j *judge) newTruckJudge(t config.Truck, n int) *truckJudge {
	tj := &truckJudge{j: j, plate: config.NormalizePlate(t.Plate), zoneSD: make([]float64, len(j.zones)), nvar: n,
		rated: t.RatedLoadKg}
	if len(t.Devices) > 0 {
		tj.dev = t.Devices[0]
	}
	for v := range tj.vars {
		tj.vars[v] = truckVar{site: -1, zones: make([]cond, len(j.zones)), offences: offences{washSite: -1}}
	}
	return tj
}

// feedComplete takes one truck record for the complete-data judge: every
// record of a truck, back-filled ones included, in event-time order.
func (j *judge) feedComplete(r *telemetry.Record, pos orb.Point) {
	for _, tj := range j.truckList {
		tj.shadow.tick(r.TS.UnixNano())
	}
	tj := j.trucks[r.Device]
	if tj == nil {
		return
	}
	switch r.Kind {
	case telemetry.KindGPS:
		tj.shadow.fix(r.TS.UnixNano(), &r.Fix, j.pl.project(pos))
	case telemetry.KindSensors:
		tj.shadow.sensors(r.TS.UnixNano(), r.Sensors)
	}
}

// feed takes one record in arrival order; pos is the truck's true position
// at a fix's time, truth the true rain (mm over the report's interval) or
// depth (cm) of a gauge report.
func (j *judge) feed(r *telemetry.Record, pos orb.Point, truth float64) {
	ts := r.TS.UnixNano()
	j.advance(ts)
	switch r.Kind {
	case telemetry.KindGPS:
		if tj := j.trucks[r.Device]; tj != nil && !r.Late {
			tj.fix(ts, &r.Fix, j.pl.project(pos))
		}
	case telemetry.KindSensors:
		if tj := j.trucks[r.Device]; tj != nil && !r.Late {
			tj.sensors(ts, r.Sensors)
		}
	case telemetry.KindRain:
		if g := j.gauges[r.Device]; g != nil {
			g.rain(ts, int64(r.Rain.IntervalS*1e9), truth)
		}
	case telemetry.KindDepth:
		if g := j.gauges[r.Device]; g != nil {
			g.depth(ts, truth)
		}
	}
}

// advance moves the watermark to now: silences due by then fire (for the
// complete-data judges too).
func (j *judge) advance(now int64) {
	for _, tj := range j.truckList {
		tj.tick(now)
		tj.shadow.tick(now)
	}
	for _, g := range j.gaugeList {
		g.tick(now)
	}
}

// expect collects every subject's expectations, ordered by time, rule and
// subject.
func (j *judge) expect() []Expect {
	var out []Expect
	for _, tj := range j.truckList {
		var vs [nTruckVariants + 1][]event
		for v := range tj.vars {
			vs[v] = tj.vars[v].events
		}
		vs[nTruckVariants] = tj.shadow.vars[0].events
		out = append(out, reconcile(tj.plate, vs[:], truckTol)...)
	}
	for _, g := range j.gaugeList {
		var vs [nGaugeVariants][]event
		for v := range g.vars {
			vs[v] = g.vars[v].events
		}
		out = append(out, reconcile(g.device, vs[:], gaugeTol)...)
		for _, e := range g.offline {
			out = append(out, Expect{Rule: RuleSensorOffline, Subject: g.device, At: time.Unix(0, e.at).UTC(), Tol: gaugeTol})
		}
	}
	sortExpect(out)
	return out
}

func sortExpect(es []Expect) {
	slices.SortStableFunc(es, func(a, b Expect) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := strings.Compare(a.Rule, b.Rule); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

// reconcile turns the events of the base variant (vs[0]) and the others
// into expectations: a base event every variant also raised within tol is
// required; one some variant missed is Optional, and so is one only
// variants raised.
func reconcile(subject string, vs [][]event, tol time.Duration) []Expect {
	var out []Expect
	rules := map[string]bool{}
	for _, evs := range vs {
		for _, e := range evs {
			rules[e.rule] = true
		}
	}
	names := make([]string, 0, len(rules))
	for r := range rules {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, rule := range names {
		pick := func(evs []event) []int64 {
			var ts []int64
			for _, e := range evs {
				if e.rule == rule {
					ts = append(ts, e.at)
				}
			}
			return ts
		}
		base := pick(vs[0])
		optional := make([]bool, len(base))
		var extra []int64
		for _, other := range vs[1:] {
			ots := pick(other)
			usedB := make([]bool, len(base))
			for _, t := range ots {
				k := nearest(base, usedB, t, tol)
				if k < 0 {
					extra = append(extra, t)
					continue
				}
				usedB[k] = true
			}
			for k, u := range usedB {
				if !u {
					optional[k] = true
				}
			}
		}
		for k, t := range base {
			out = append(out, Expect{Rule: rule, Subject: subject, At: time.Unix(0, t).UTC(), Tol: tol, Optional: optional[k]})
		}
		slices.Sort(extra)
		last := int64(math.MinInt64)
		for _, t := range extra {
			if last != math.MinInt64 && t-last <= int64(tol) {
				continue
			}
			last = t
			out = append(out, Expect{Rule: rule, Subject: subject, At: time.Unix(0, t).UTC(), Tol: tol, Optional: true})
		}
	}
	return out
}

// nearest returns the unused index of ts closest to t within tol, or -1.
func nearest(ts []int64, used []bool, t int64, tol time.Duration) int {
	best, bd := -1, int64(tol)+1
	for k, s := range ts {
		if used[k] {
			continue
		}
		d := s - t
		if d < 0 {
			d = -d
		}
		if d < bd {
			best, bd = k, d
		}
	}
	return best
}

// cond is a condition rule's state (Inactive → Pending → Firing, in event
// time): it fires once raise has held for dwell and resolves once clear
// has held for clear.
type cond struct {
	since, absent int64
	firing        bool
}

// update feeds the condition at now and reports whether it fired.
func (c *cond) update(now int64, raise, clear bool, dwell, clearAfter time.Duration) bool {
	if c.firing {
		if !clear {
			c.absent = 0
			return false
		}
		if c.absent == 0 {
			c.absent = now
		}
		if now-c.absent >= int64(clearAfter) {
			*c = cond{}
		}
		return false
	}
	if !raise {
		c.since = 0
		return false
	}
	if c.since == 0 {
		c.since = now
	}
	if now-c.since >= int64(dwell) {
		c.firing, c.absent = true, 0
		return true
	}
	return false
}

// jpermit is a permit with its routes and sites resolved.
type jpermit struct {
	p        *config.Permit
	routes   []polyline
	allowed  []int
	corridor float64
}

// truckJudge is one truck's state, shared by its variants where it does
// not depend on them.
type truckJudge struct {
	j     *judge
	plate string
	dev   string
	nvar  int // variants run: all, or only the base one
	// shadow judges the same truck on complete data: every fix and
	// sensors message, back-filled ones included, in event-time order,
	// as if none had been delayed. Where it disagrees with the judge on
	// the stream as it arrives, the expectation is Optional.
	shadow  *truckJudge
	permits []jpermit

	hasLoadSensor bool
	fixTS         int64
	validTS       int64
	speed         float64
	pos           xy
	siteIdx       int
	siteSD        float64   // signed distance to the nearest site's fence, + inside
	zoneSD        []float64 // per zone
	routeD        []float64 // per permit: distance to its nearest route, NaN = not computed
	sens          telemetry.SensorState
	known         bool
	raisedSince   int64
	peakKg        float64
	peakTS        int64
	rated         float64 // kg; 0 = overload not judged
	// lagging: the last sensors message was more than 30 s older than the
	// newest fix (back-filled history), not the sensors' current state.
	lagging bool

	permTS           int64 // the time valid and open were computed for
	valid, open      []bool
	anyValid, anyOpn bool
	active           []bool // per zone, scratch

	vars [nTruckVariants]truckVar
}

// truckVar is a variant's part of a truck's state.
type truckVar struct {
	site                 int
	tripLoaded           bool
	dumpDone, dumpFiring bool
	uncovered, offRoute  cond
	hours, noPermit      cond
	zones                []cond
	armed, signalFiring  bool
	events               []event
	offences
}

func (tj *truckJudge) emit(v int, rule string, at int64) {
	tj.vars[v].events = append(tj.vars[v].events, event{rule: rule, at: at})
}

// fix takes a fix at ts with the truck's true position.
func (tj *truckJudge) fix(ts int64, f *telemetry.Fix, pos xy) {
	r := &tj.j.rules
	if !f.Valid || f.Sats < r.MinSats || ts < tj.fixTS {
		return
	}
	prev := tj.fixTS
	tj.fixTS, tj.validTS, tj.speed, tj.pos = ts, ts, f.SpeedKmh, pos
	tj.locate()
	for v := range tj.nvar {
		x := &tj.vars[v]
		site := -1
		if tj.siteSD > truckVariants[v].geo {
			site = tj.siteIdx
		}
		if site != x.site {
			if x.site >= 0 {
				tj.leaveSite(v, x.site, ts)
			}
			if x.site >= 0 && !tj.hasLoadSensor {
				x.tripLoaded = tj.j.sites[x.site].kind == config.SiteConstruction
			}
			if site >= 0 && !tj.hasLoadSensor && tj.j.sites[site].kind == config.SiteConstruction {
				tj.washFrom(v, site, prev) // without a load sensor: judged from entering
			}
			x.site = site
		} else {
			tj.washStay(v, ts, prev)
		}
		x.signalFiring = false
	}
	tj.evaluate(ts)
	for v := range tj.nvar {
		x := &tj.vars[v]
		x.armed = x.site < 0 && (tj.speed >= r.UncoveredLoad.MinSpeedKmh || tj.loaded(x))
	}
}

// locate computes where the truck is relative to sites and zones.
func (tj *truckJudge) locate() {
	const far = 50
	tj.siteIdx, tj.siteSD = -1, math.Inf(-1)
	for i := range tj.j.sites {
		if sd := tj.j.sites[i].area.signed(tj.pos, far); sd > tj.siteSD {
			tj.siteIdx, tj.siteSD = i, sd
		}
	}
	for i := range tj.j.zones {
		tj.zoneSD[i] = tj.j.zones[i].area.signed(tj.pos, far)
	}
	if tj.routeD == nil {
		tj.routeD = make([]float64, len(tj.permits))
	}
	for i := range tj.routeD {
		tj.routeD[i] = math.NaN()
	}
}

// siteAt returns the site whose fence (shrunk by geo) holds p, or -1.
func (j *judge) siteAt(p xy, geo float64) int {
	for i := range j.sites {
		if j.sites[i].area.signed(p, 50) > geo {
			return i
		}
	}
	return -1
}

// permitsAt computes which permits are valid and open at now.
func (tj *truckJudge) permitsAt(now int64) {
	if tj.permTS == now && tj.valid != nil {
		return
	}
	if tj.valid == nil {
		tj.valid, tj.open = make([]bool, len(tj.permits)), make([]bool, len(tj.permits))
	}
	t := time.Unix(0, now)
	tj.permTS, tj.anyValid, tj.anyOpn = now, false, false
	for i := range tj.permits {
		tj.valid[i], tj.open[i] = tj.permits[i].p.Check(t, tj.j.loc)
		tj.anyValid = tj.anyValid || tj.valid[i]
		tj.anyOpn = tj.anyOpn || tj.open[i]
	}
}

// inCorridor reports whether the truck is within the corridor (narrowed by
// geo) of a route of a valid permit.
func (tj *truckJudge) inCorridor(geo float64) bool {
	for i := range tj.permits {
		if !tj.valid[i] {
			continue
		}
		if math.IsNaN(tj.routeD[i]) {
			d := math.Inf(1)
			for _, l := range tj.permits[i].routes {
				d = math.Min(d, l.distance(tj.pos))
			}
			tj.routeD[i] = d
		}
		if tj.routeD[i] <= tj.permits[i].corridor-geo {
			return true
		}
	}
	return false
}

func (tj *truckJudge) loaded(x *truckVar) bool {
	if tj.hasLoadSensor {
		return tj.known && tj.sens.HasLoad && tj.sens.LoadKg >= tj.j.rules.UncoveredLoad.LoadedKg
	}
	return x.tripLoaded
}

// sensors takes a sensors message at ts.
func (tj *truckJudge) sensors(ts int64, s telemetry.SensorState) {
	r := &tj.j.rules
	if s.Cover == telemetry.CoverUnknown && tj.known {
		s.Cover = tj.sens.Cover
	}
	if s.Body == telemetry.BodyUnknown && tj.known {
		s.Body = tj.sens.Body
	}
	tj.sens, tj.known = s, true
	tj.lagging = tj.fixTS-ts > int64(30*time.Second)
	if s.HasLoad {
		tj.hasLoadSensor = true
		for v := range tj.nvar {
			tj.spill(v, ts, s.LoadKg)
		}
	}
	switch {
	case s.Body == telemetry.BodyRaised && tj.raisedSince == 0:
		tj.raisedSince = ts
		for v := range tj.nvar {
			tj.vars[v].dumpDone = false
		}
	case s.Body != telemetry.BodyRaised && s.Body != telemetry.BodyUnknown:
		tj.raisedSince = 0
	}
	tj.permitsAt(ts)
	if s.HasLoad {
		kg := s.LoadKg
		if kg >= tj.peakKg || ts-tj.peakTS > int64(r.IllegalDumping.LoadDropWithin) {
			tj.peakKg, tj.peakTS = kg, ts
		} else if tj.peakKg >= r.UncoveredLoad.LoadedKg && kg <= tj.peakKg*(1-r.IllegalDumping.LoadDropPct/100) &&
			tj.speed < r.IllegalDumping.MaxSpeedKmh {
			for v := range tj.nvar {
				tj.judgeDump(v, ts, ts)
			}
			tj.peakKg, tj.peakTS = kg, ts
		}
	}
	if tj.fixTS != 0 {
		tj.evaluate(max(ts, tj.fixTS))
	}
}

// judgeDump judges at now a dump that began at began: illegal unless it
// began at an origin or disposal site of a valid permit (without one: at
// a disposal site). Once per dump.
func (tj *truckJudge) judgeDump(v int, now, began int64) {
	x := &tj.vars[v]
	if x.dumpDone || x.dumpFiring {
		return
	}
	x.dumpDone = true
	if !tj.hasLoadSensor {
		x.tripLoaded = false
	}
	site := x.site
	if began < tj.fixTS && tj.j.posAt != nil {
		if p, ok := tj.j.posAt(tj.dev, began); ok {
			site = tj.j.siteAt(tj.j.pl.project(p), truckVariants[v].geo)
		}
	}
	if site >= 0 && tj.dumpAllowed(site) {
		return
	}
	x.dumpFiring = true
	tj.emit(v, RuleIllegalDumping, now)
}

func (tj *truckJudge) dumpAllowed(site int) bool {
	anyValid := false
	for i := range tj.permits {
		if !tj.valid[i] {
			continue
		}
		anyValid = true
		if slices.Contains(tj.permits[i].allowed, site) {
			return true
		}
	}
	return !anyValid && tj.j.sites[site].kind == config.SiteDisposal
}

// evaluate runs the condition rules of every variant at now.
func (tj *truckJudge) evaluate(now int64) {
	j := tj.j
	r := &j.rules
	tj.permitsAt(now)
	t := time.Unix(0, now)
	speed := tj.speed
	if tj.active == nil {
		tj.active = make([]bool, len(j.zones))
	}
	active := tj.active
	for i, z := range j.zones {
		active[i] = z.z.Active(t, j.loc)
	}
	bad := tj.known && (tj.sens.Cover == telemetry.CoverOpen || tj.sens.Cover == telemetry.CoverFault)
	closed := tj.known && tj.sens.Cover == telemetry.CoverClosed
	for v := range tj.nvar {
		x := &tj.vars[v]
		vr := truckVariants[v]
		dw := func(d time.Duration) time.Duration { return d + vr.dwell }
		cl := func(d time.Duration) time.Duration { return d - vr.dwell }
		loaded := tj.loaded(x)
		outside := x.site < 0

		if tj.raisedSince != 0 && !x.dumpDone && now-tj.raisedSince >= int64(dw(r.IllegalDumping.RaisedFor)) {
			tj.judgeDump(v, now, tj.raisedSince)
		}
		if x.dumpFiring && tj.raisedSince == 0 && speed >= r.UncoveredLoad.MinSpeedKmh {
			x.dumpFiring = false
		}

		ul := &r.UncoveredLoad
		if x.uncovered.firing && !outside {
			x.uncovered = cond{}
		} else if x.uncovered.update(now, loaded && bad && speed >= ul.MinSpeedKmh && outside, closed || !loaded,
			dw(ul.Dwell), cl(ul.ClearAfter)) {
			tj.emit(v, RuleUncoveredLoad, now)
		}

		np := &r.NoPermit
		moving := speed >= np.MinSpeedKmh
		if !tj.anyValid {
			if x.noPermit.update(now, moving && outside, !moving || !outside, dw(np.Dwell), cl(np.ClearAfter)) {
				tj.emit(v, RuleNoPermit, now)
			}
		} else if x.noPermit.firing {
			x.noPermit = cond{}
		}
		hr := &r.OutsidePermitHours
		if tj.anyValid && !tj.anyOpn {
			if x.hours.update(now, speed >= hr.MinSpeedKmh && outside, speed < hr.MinSpeedKmh || !outside,
				dw(hr.Dwell), cl(hr.ClearAfter)) {
				tj.emit(v, RuleOutsidePermitHours, now)
			}
		} else if x.hours.firing {
			x.hours = cond{}
		}

		or := &r.OffRoute
		switch {
		case tj.anyValid && outside:
			in := tj.inCorridor(vr.geo)
			if x.offRoute.update(now, loaded && speed >= or.MinSpeedKmh && !in, in, dw(or.Dwell), cl(or.ClearAfter)) {
				tj.emit(v, RuleOffRoute, now)
			}
		case x.offRoute.firing && !outside:
			x.offRoute = cond{}
		case !x.offRoute.firing:
			x.offRoute.since = 0
		}

		zr := &r.ZoneViolation
		for zi, z := range j.zones {
			holds := tj.zoneSD[zi] > vr.geo && active[zi] && zoneMatch(&z.z.Condition, speed, tj.sens, tj.known, loaded)
			if x.zones[zi].update(now, holds, !holds, dw(zr.Dwell), cl(zr.ClearAfter)) {
				tj.emit(v, RuleZoneViolation, now)
			}
		}
		tj.evaluateOffences(v, now, loaded)
	}
}

// zoneMatch reports whether a truck matches every predicate a zone sets.
func zoneMatch(c *config.ZoneCondition, speed float64, s telemetry.SensorState, known, loaded bool) bool {
	switch {
	case c.MaxSpeedKmh > 0 && speed <= c.MaxSpeedKmh,
		c.MinSpeedKmh > 0 && speed < c.MinSpeedKmh,
		c.Loaded != nil && *c.Loaded != loaded,
		len(c.Cover) > 0 && (!known || !slices.Contains(c.Cover, s.Cover.String())),
		len(c.Body) > 0 && (!known || !slices.Contains(c.Body, s.Body.String())):
		return false
	}
	return true
}

// tick fires signal_lost on a truck silent since its last valid fix.
func (tj *truckJudge) tick(now int64) {
	if tj.validTS == 0 {
		return
	}
	for v := range tj.nvar {
		x := &tj.vars[v]
		due := tj.validTS + int64(tj.j.rules.SignalLost.After+truckVariants[v].dwell)
		if x.armed && !x.signalFiring && due <= now {
			x.signalFiring = true
			tj.emit(v, RuleSignalLost, due)
		}
	}
}

// gaugeJudge is one rain gauge's or depth point's state.
type gaugeJudge struct {
	j           *judge
	device      string
	warn, close float64

	lastTS        int64
	offlineFiring bool
	offline       []event
	rainS         []rainSample
	newestDepth   int64
	vars          [nGaugeVariants]gaugeVar
}

type rainSample struct {
	ts, dur int64
	mm      float64
}

type gaugeVar struct {
	level            int
	held             [5]int64
	heavyHeld        int64
	heavyFiring      bool
	depthLvl         int
	below, belowHigh int64
	events           []event
}

// heard notes a report at ts.
func (g *gaugeJudge) heard(ts int64) {
	if ts > g.lastTS {
		g.lastTS = ts
	}
	g.offlineFiring = false
}

// tick fires sensor_offline on a gauge silent since its last report.
func (g *gaugeJudge) tick(now int64) {
	due := g.lastTS + int64(g.j.rules.SensorOffline.After)
	if g.lastTS != 0 && !g.offlineFiring && due <= now {
		g.offlineFiring = true
		g.offline = append(g.offline, event{rule: RuleSensorOffline, at: due})
	}
}

// rain takes a rain report at ts covering dur with mm of true rain.
func (g *gaugeJudge) rain(ts, dur int64, mm float64) {
	g.heard(ts)
	i, _ := slices.BinarySearchFunc(g.rainS, ts, func(s rainSample, t int64) int { return cmp.Compare(s.ts, t) })
	if i < len(g.rainS) && g.rainS[i].ts == ts {
		g.rainS[i] = rainSample{ts, dur, mm}
	} else {
		g.rainS = slices.Insert(g.rainS, i, rainSample{ts, dur, mm})
	}
	rr := &g.j.rules.Rainstorm
	now := g.rainS[len(g.rainS)-1].ts
	keep := int64(max(rr.Blue.Window, rr.Yellow.Window, rr.Orange.Window, rr.Red.Window, g.j.rules.HeavyRain.Window) + time.Hour)
	cut := 0
	for cut < len(g.rainS) && g.rainS[cut].ts < now-keep {
		cut++
	}
	g.rainS = g.rainS[cut:]
	levels := [5]*config.RainLevel{nil, &rr.Blue, &rr.Yellow, &rr.Orange, &rr.Red}
	var sums [5]float64
	var complete [5]bool
	for l := 1; l <= 4; l++ {
		sums[l], complete[l] = g.accumulate(now, levels[l].Window, rr.MaxGap)
	}
	hr := &g.j.rules.HeavyRain
	heavy, heavyComplete := g.accumulate(now, hr.Window, rr.MaxGap)
	for v := range g.vars {
		x := &g.vars[v]
		eps := gaugeVariants[v] * rainDelta
		for l := 1; l <= 4; l++ {
			if sums[l] >= levels[l].MM+eps || (!complete[l] && x.held[l] != 0 && l <= x.level) {
				x.held[l] = now
			}
		}
		level := 0
		for l := 4; l >= 1; l-- {
			if x.held[l] != 0 && now-x.held[l] < int64(rr.ClearAfter) {
				level = l
				break
			}
		}
		if level != x.level {
			if x.level == 0 {
				x.events = append(x.events, event{rule: RuleRainstorm, at: now})
			}
			if level == 0 {
				x.held = [5]int64{}
			}
			x.level = level
		}
		if heavy >= hr.MM+eps || (!heavyComplete && x.heavyFiring) {
			x.heavyHeld = now
		}
		switch {
		case !x.heavyFiring && x.heavyHeld == now:
			x.heavyFiring = true
			x.events = append(x.events, event{rule: RuleHeavyRain, at: now})
		case x.heavyFiring && now-x.heavyHeld >= int64(hr.ClearAfter):
			x.heavyFiring = false
		}
	}
}

// accumulate sums the rain in (now-w, now], prorating the report that
// straddles the window's start; complete is false when a stretch longer
// than maxGap lacks reports.
func (g *gaugeJudge) accumulate(now int64, w, maxGap time.Duration) (mm float64, complete bool) {
	from := now - int64(w)
	covered := from
	complete = true
	for _, s := range g.rainS {
		start, end := s.ts-s.dur, s.ts
		if end <= from {
			continue
		}
		if end > now {
			break
		}
		if start-covered > int64(maxGap) {
			complete = false
		}
		if start < from {
			if s.dur > 0 {
				mm += s.mm * float64(end-from) / float64(s.dur)
			}
		} else {
			mm += s.mm
		}
		covered = max(covered, end)
	}
	if now-covered > int64(maxGap) {
		complete = false
	}
	return mm, complete
}

// depth takes a depth report at ts with the true depth cm.
func (g *gaugeJudge) depth(ts int64, cm float64) {
	g.heard(ts)
	if ts < g.newestDepth {
		return
	}
	g.newestDepth = ts
	wr := &g.j.rules.Waterlogging
	for v := range g.vars {
		x := &g.vars[v]
		eps := gaugeVariants[v] * depthDelta
		warn, closeCM := g.warn+eps, g.close+eps
		target := 0
		switch {
		case cm >= closeCM:
			target = 2
		case cm >= warn:
			target = 1
		}
		x.belowHigh = belowSince(x.belowHigh, cm < closeCM-wr.HysteresisCM, ts)
		x.below = belowSince(x.below, cm < warn-wr.HysteresisCM, ts)
		lvl := max(x.depthLvl, target)
		if lvl == 2 && x.belowHigh != 0 && ts-x.belowHigh >= int64(wr.ClearAfter) {
			lvl = 1
		}
		if lvl == 1 && x.below != 0 && ts-x.below >= int64(wr.ClearAfter) {
			lvl = 0
		}
		if x.depthLvl == 0 && lvl > 0 {
			x.events = append(x.events, event{rule: RuleWaterlogging, at: ts})
		}
		x.depthLvl = lvl
	}
}

func belowSince(since int64, under bool, ts int64) int64 {
	switch {
	case !under:
		return 0
	case since == 0:
		return ts
	}
	return since
}
