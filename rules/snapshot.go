package rules

import (
	"bytes"
	"container/heap"
	"encoding/gob"
	"fmt"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// snapshotVersion changes whenever the encoding below does; Restore refuses
// other versions (the engine then starts empty and replays what the spool
// still holds).
const snapshotVersion = 1

// Snapshot encodes the engine's state: the watermark and every truck's and
// gauge's rule state, with the alerts firing. Restore on a new engine gives
// one that continues exactly where this one stood, so that a restart
// announces nothing twice. Sites and zones are saved by id, so a snapshot
// survives a configuration change.
func (e *Engine) Snapshot() ([]byte, error) {
	s := engineSnap{Version: snapshotVersion, WM: e.wm, DataWM: e.dataWM}
	for plate, st := range e.trucks {
		s.Trucks = append(s.Trucks, st.snap(e, plate))
	}
	for dev, g := range e.gauges {
		s.Gauges = append(s.Gauges, g.snap(dev))
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&s); err != nil {
		return nil, fmt.Errorf("rules: encode snapshot: %w", err)
	}
	return b.Bytes(), nil
}

// Restore replaces the engine's state with a snapshot. Trucks and gauges
// no longer configured are dropped (their alerts were announced already;
// nothing resolves them but a reload, so Restore logs them).
func (e *Engine) Restore(data []byte) error {
	var s engineSnap
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return fmt.Errorf("rules: decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("rules: snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	e.trucks, e.gauges, e.timers = map[string]*truckState{}, map[string]*gaugeState{}, nil
	e.wm, e.dataWM, e.dataWall = s.WM, s.DataWM, 0
	for i := range s.Trucks {
		ts := &s.Trucks[i]
		ti := e.m.plates[ts.Plate]
		if ti == nil {
			e.log.Warn().Str("truck", ts.Plate).Msg("snapshot truck no longer configured; its state is dropped")
			continue
		}
		st := ts.restore(e, ti)
		e.trucks[ts.Plate] = st
		if st.armed && !st.signal.firing {
			e.schedule(&st.queued, st.silentFrom()+int64(e.m.rules.SignalLost.After), timer{truck: st})
		}
	}
	for i := range s.Gauges {
		gs := &s.Gauges[i]
		cfg := e.m.gauges[gs.Device]
		if cfg == nil {
			e.log.Warn().Str("gauge", gs.Device).Msg("snapshot gauge no longer configured; its state is dropped")
			continue
		}
		g := gs.restore(cfg)
		e.gauges[gs.Device] = g
		g.schedule(e)
	}
	heap.Init(&e.timers)
	e.watchGauges()
	e.met.subjects.WithLabelValues("truck").Set(float64(len(e.trucks)))
	e.met.subjects.WithLabelValues("gauge").Set(float64(len(e.gauges)))
	e.recountFiring()
	return nil
}

// recountFiring sets the firing gauge from the restored state.
func (e *Engine) recountFiring() {
	e.met.firing.Reset()
	inc := func(rule string, c *cond) {
		if c.firing {
			e.met.firing.WithLabelValues(rule).Inc()
		}
	}
	for _, st := range e.trucks {
		inc(RuleUncoveredLoad, &st.uncovered)
		inc(RuleOffRoute, &st.offRoute)
		inc(RuleOutsidePermitHours, &st.hours)
		inc(RuleNoPermit, &st.noPermit)
		inc(RuleSignalLost, &st.signal)
		inc(RuleIllegalDumping, &st.dump)
		inc(RuleOverload, &st.overload)
		inc(RuleUnwashedExit, &st.unwashed)
		inc(RuleSpillage, &st.spill)
		for i := range st.zones {
			inc(RuleZoneViolation, &st.zones[i].c)
		}
	}
	for _, g := range e.gauges {
		inc(RuleSensorOffline, &g.offline)
		inc(RuleRainstorm, &g.storm)
		inc(RuleHeavyRain, &g.heavy)
		inc(RuleWaterlogging, &g.waterlog)
	}
}

type engineSnap struct {
	Version    int
	WM, DataWM int64
	Trucks     []truckSnap
	Gauges     []gaugeSnap
}

type condSnap struct {
	Since, Absent, Started int64
	Version                int32
	Firing                 bool
}

func (c cond) snap() condSnap {
	return condSnap{c.since, c.absent, c.started, c.version, c.firing}
}

func (c condSnap) restore() cond {
	return cond{since: c.Since, absent: c.Absent, started: c.Started, version: c.Version, firing: c.Firing}
}

type sensorSnap struct {
	TS      int64
	LoadKg  float32
	Cover   uint8
	Body    uint8
	HasLoad bool
}

type zoneSnap struct {
	Zone string
	C    condSnap
}

type truckSnap struct {
	Plate                                  string
	FixTS, ValidTS, SensTS, HeardWM        int64
	Lon, Lat                               float64
	Speed                                  float32
	Site, LastSite                         string
	Sens                                   []sensorSnap
	HasLoadSensor, TripLoaded, SensLagging bool
	RaisedSince                            int64
	PeakKg                                 float32
	PeakTS                                 int64
	DumpDone                               bool
	Dump                                   condSnap
	DumpTrigger                            string
	Uncovered, OffRoute, Hours, NoPermit   condSnap
	Signal                                 condSnap
	Armed                                  bool
	Zones                                  []zoneSnap
	Visits                                 []visitSnap

	// Added with overload, unwashed_exit, spillage and trips; an older
	// snapshot restores them empty.
	Overload, Unwashed, Spill condSnap
	WashSite                  string
	WashSince, WashBest       int64
	SpillPeakKg               float32
	SpillPeakTS, SpillDropTS  int64
	SpillFrom, SpillTo        float32
	SpillLon, SpillLat        float64
	SpillSpeed                float32
	WasLoaded                 bool
	Trip                      *tripSnap
	WashStood                 bool // added later still: an older snapshot restores it false
}

type tripSnap struct {
	Loaded, Departed int64
	Origin, Permit   string
	DistM            float64
	LastX, LastY     float64
	HasLast          bool
	Violations       []string
}

type visitSnap struct {
	From, To int64
	Site     string
}

func (st *truckState) snap(e *Engine, plate string) truckSnap {
	s := truckSnap{Plate: plate, FixTS: st.fixTS, ValidTS: st.validTS, SensTS: st.sensTS, HeardWM: st.heardWM, Lon: st.lon, Lat: st.lat,
		Speed: st.speed, HasLoadSensor: st.hasLoadSensor, TripLoaded: st.tripLoaded, SensLagging: st.sensLagging, RaisedSince: st.raisedSince,
		PeakKg: st.peakKg, PeakTS: st.peakTS, DumpDone: st.dumpDone, Dump: st.dump.snap(), DumpTrigger: st.dumpTrigger,
		Uncovered: st.uncovered.snap(), OffRoute: st.offRoute.snap(), Hours: st.hours.snap(),
		NoPermit: st.noPermit.snap(), Signal: st.signal.snap(), Armed: st.armed}
	if st.site >= 0 {
		s.Site = e.m.site[st.site].ID
	}
	if st.lastSite >= 0 {
		s.LastSite = e.m.site[st.lastSite].ID
	}
	for i := range int(st.nSens) {
		x := st.sens[i]
		s.Sens = append(s.Sens, sensorSnap{x.ts, x.loadKg, uint8(x.cover), uint8(x.body), x.hasLoad})
	}
	for _, z := range st.zones {
		s.Zones = append(s.Zones, zoneSnap{Zone: e.m.zone[z.zone].ID, C: z.c.snap()})
	}
	for _, v := range st.visits {
		if v.to != 0 && v.site >= 0 && int(v.site) < len(e.m.site) {
			s.Visits = append(s.Visits, visitSnap{From: v.from, To: v.to, Site: e.m.site[v.site].ID})
		}
	}
	o := &st.offenceState
	s.Overload, s.Unwashed, s.Spill = o.overload.snap(), o.unwashed.snap(), o.spill.snap()
	if o.washSite >= 0 {
		s.WashSite = e.m.site[o.washSite].ID
	}
	s.WashSince, s.WashBest, s.WashStood = o.washSince, o.washBest, o.washStood
	s.SpillPeakKg, s.SpillPeakTS, s.SpillDropTS, s.SpillFrom, s.SpillTo = o.spillPeakKg, o.spillPeakTS, o.spillDropTS, o.spillFrom, o.spillTo
	s.SpillLon, s.SpillLat, s.SpillSpeed, s.WasLoaded = o.spillLon, o.spillLat, o.spillSpeed, o.wasLoaded
	if tr := o.trip; tr != nil {
		ts := &tripSnap{Loaded: tr.loaded, Departed: tr.departed, Permit: tr.permit, DistM: tr.distM,
			LastX: tr.last.X, LastY: tr.last.Y, HasLast: tr.hasLast, Violations: tr.violations}
		if tr.origin >= 0 {
			ts.Origin = e.m.site[tr.origin].ID
		}
		s.Trip = ts
	}
	return s
}

func (s *truckSnap) restore(e *Engine, ti *truckInfo) *truckState {
	st := &truckState{info: ti, fixTS: s.FixTS, validTS: s.ValidTS, sensTS: s.SensTS, heardWM: s.HeardWM, lon: s.Lon, lat: s.Lat,
		speed: s.Speed, hasLoadSensor: s.HasLoadSensor, tripLoaded: s.TripLoaded, sensLagging: s.SensLagging, raisedSince: s.RaisedSince,
		peakKg: s.PeakKg, peakTS: s.PeakTS, dumpDone: s.DumpDone, dump: s.Dump.restore(), dumpTrigger: s.DumpTrigger,
		uncovered: s.Uncovered.restore(), offRoute: s.OffRoute.restore(), hours: s.Hours.restore(),
		noPermit: s.NoPermit.restore(), signal: s.Signal.restore(), armed: s.Armed, site: -1, lastSite: -1}
	if s.Lon != 0 || s.Lat != 0 {
		st.pos = e.m.plane.Project(s.Lon, s.Lat)
	}
	if s.Site != "" {
		st.site = e.m.siteIndex(s.Site)
	}
	if s.LastSite != "" {
		st.lastSite = e.m.siteIndex(s.LastSite)
	}
	for _, x := range s.Sens {
		st.addSensors(sensorSample{ts: x.TS, loadKg: x.LoadKg, cover: telemetry.Cover(x.Cover),
			body: telemetry.Body(x.Body), hasLoad: x.HasLoad})
	}
	for _, z := range s.Zones {
		if k := e.m.zoneIndex(z.Zone); k >= 0 {
			st.zones = append(st.zones, zoneCond{zone: k, c: z.C.restore()})
		}
	}
	for i, v := range s.Visits {
		if k := e.m.siteIndex(v.Site); k >= 0 && i < visitRing {
			st.visits[i] = visit{from: v.From, to: v.To, site: k}
		}
	}
	o := &st.offenceState
	o.overload, o.unwashed, o.spill = s.Overload.restore(), s.Unwashed.restore(), s.Spill.restore()
	o.washSite = -1
	if s.WashSite != "" {
		o.washSite = e.m.siteIndex(s.WashSite)
	}
	o.washSince, o.washBest, o.washStood = s.WashSince, s.WashBest, s.WashStood
	o.spillPeakKg, o.spillPeakTS, o.spillDropTS, o.spillFrom, o.spillTo = s.SpillPeakKg, s.SpillPeakTS, s.SpillDropTS, s.SpillFrom, s.SpillTo
	o.spillLon, o.spillLat, o.spillSpeed, o.wasLoaded = s.SpillLon, s.SpillLat, s.SpillSpeed, s.WasLoaded
	if ts := s.Trip; ts != nil {
		tr := &tripState{loaded: ts.Loaded, departed: ts.Departed, origin: -1, permit: ts.Permit, distM: ts.DistM,
			last: geo.XY{X: ts.LastX, Y: ts.LastY}, hasLast: ts.HasLast, violations: ts.Violations}
		if ts.Origin != "" {
			tr.origin = e.m.siteIndex(ts.Origin)
		}
		o.trip = tr
	}
	return st
}

type rainSnap struct {
	TS, Dur int64
	MM      float32
}

type depthSnap struct {
	TS int64
	CM float32
}

type gaugeSnap struct {
	Device            string
	LastTS            int64
	Rain              []rainSnap
	RainLevel         int
	Held              [5]int64
	Storm             condSnap
	HeavyHeld         int64
	Heavy             condSnap
	Depth             []depthSnap
	DepthLvl          int
	Below, BelowClose int64
	Waterlog          condSnap
	DepthPeak         float32
	Offline           condSnap
}

func (g *gaugeState) snap(dev string) gaugeSnap {
	s := gaugeSnap{Device: dev, LastTS: g.lastTS, RainLevel: g.rainLevel, Held: g.held, Storm: g.storm.snap(),
		HeavyHeld: g.heavyHeld, Heavy: g.heavy.snap(), DepthLvl: g.depthLvl, Below: g.below, BelowClose: g.belowClose,
		Waterlog: g.waterlog.snap(), DepthPeak: g.depthPeak, Offline: g.offline.snap()}
	for _, r := range g.rain {
		s.Rain = append(s.Rain, rainSnap{r.ts, r.dur, r.mm})
	}
	n := min(g.nDepth, len(g.depth))
	for k := n; k >= 1; k-- {
		d := g.depth[(g.nDepth-k)%len(g.depth)]
		s.Depth = append(s.Depth, depthSnap{d.ts, d.cm})
	}
	return s
}

func (s *gaugeSnap) restore(cfg *config.Gauge) *gaugeState {
	g := &gaugeState{cfg: cfg, lastTS: s.LastTS, rainLevel: s.RainLevel, held: s.Held, storm: s.Storm.restore(),
		heavyHeld: s.HeavyHeld, heavy: s.Heavy.restore(), depthLvl: s.DepthLvl, below: s.Below, belowClose: s.BelowClose,
		waterlog: s.Waterlog.restore(), depthPeak: s.DepthPeak, offline: s.Offline.restore()}
	for _, r := range s.Rain {
		g.rain = append(g.rain, rainSample{ts: r.TS, dur: r.Dur, mm: r.MM})
	}
	for _, d := range s.Depth {
		g.depth[g.nDepth%len(g.depth)] = depthSample{ts: d.TS, cm: d.CM}
		g.nDepth++
	}
	return g
}
