package rules

import (
	"math"
	"sort"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Rule ids of the flood rules.
const (
	RuleRainstorm     = "rainstorm"      // 暴雨
	RuleHeavyRain     = "heavy_rain_1h"  // 短时强降水
	RuleWaterlogging  = "waterlogging"   // 内涝
	RuleSensorOffline = "sensor_offline" // 设备离线
)

// Rainstorm levels, in rising order; 0 is none.
var levelNames = [...]string{"", "blue", "yellow", "orange", "red"}

// rainSample is one rain report: MM fell in (ts-dur, ts].
type rainSample struct {
	ts  int64
	dur int64
	mm  float32
}

// depthSample is one depth report.
type depthSample struct {
	ts int64
	cm float32
}

// gaugeState is what the rules remember of one gauge or depth point.
type gaugeState struct {
	cfg    *config.Gauge
	lastTS int64 // newest report, or the watermark when it arrived if later (or when watching began)
	queued int64 // live timer entry; -1 removed

	rain      []rainSample // sorted by ts, pruned to the longest window
	rainLevel int          // current rainstorm level (0 none)
	held      [5]int64     // per level, the last event time it held
	storm     cond
	heavyHeld int64
	heavy     cond

	depth      [16]depthSample // ring of recent readings
	nDepth     int
	depthLvl   int   // 0 none, 1 warning, 2 road closure
	below      int64 // depth under warn_cm − hysteresis since (0: not under)
	belowClose int64 // depth under close_cm − hysteresis since
	waterlog   cond
	depthPeak  float32

	offline cond
}

func (g *gaugeState) subject(e *Engine) telemetry.Subject {
	return telemetry.Subject{Kind: telemetry.SubjectGauge, ID: g.cfg.Device, Name: g.cfg.Name,
		District: g.cfg.District, Device: g.cfg.Device}
}

func (g *gaugeState) location() telemetry.Location {
	return telemetry.Location{Lat: g.cfg.Lat, Lon: g.cfg.Lon}
}

// heard notes a report at ts: it clears sensor_offline and moves the
// silence deadline.
func (g *gaugeState) heard(e *Engine, ts int64) {
	// A report that arrives long after its own time still shows the gauge
	// is alive: silence is measured from the watermark at arrival too.
	g.lastTS = max(g.lastTS, ts, e.wm)
	if g.offline.firing {
		g.offline.firing = false
		g.offline.version++
		e.emit(RuleSensorOffline, telemetry.AlertResolved, g.offline.version, e.m.rules.SensorOffline.Severity,
			g.subject(e), g.offline.started, ts, g.location(),
			map[string]any{"silent_s": math.Round(float64(ts-g.offline.started) / 1e9)})
	}
	g.schedule(e)
}

func (g *gaugeState) schedule(e *Engine) {
	if g.queued < 0 {
		return
	}
	e.schedule(&g.queued, g.lastTS+int64(e.m.rules.SensorOffline.After), timer{gauge: g})
}

// onTimer checks the sensor_offline deadline.
func (g *gaugeState) onTimer(e *Engine) {
	if g.queued < 0 || g.offline.firing {
		return
	}
	after := int64(e.m.rules.SensorOffline.After)
	due := g.lastTS + after
	if due > e.wm {
		g.schedule(e)
		return
	}
	g.offline = cond{firing: true, started: g.lastTS, version: 1}
	e.emit(RuleSensorOffline, telemetry.AlertFiring, 1, e.m.rules.SensorOffline.Severity, g.subject(e),
		g.lastTS, due, g.location(), map[string]any{
			"last_report": time.Unix(0, g.lastTS).UTC().Format(time.RFC3339), "after_s": e.m.rules.SensorOffline.After.Seconds(),
			"kind": string(g.cfg.Kind),
		})
}

// onRain takes one rain report.
func (g *gaugeState) onRain(e *Engine, ts int64, r telemetry.RainReading) {
	rs := &e.m.rules
	newest := g.newestRain()
	if ts < newest && newest-ts > int64(rs.ReorderWindow) {
		e.met.skipped.WithLabelValues("too_late").Inc()
		return
	}
	g.heard(e, ts)
	s := rainSample{ts: ts, dur: int64(r.IntervalS * 1e9), mm: float32(r.MM)}
	i := sort.Search(len(g.rain), func(i int) bool { return g.rain[i].ts >= ts })
	if i < len(g.rain) && g.rain[i].ts == ts {
		g.rain[i] = s
	} else {
		g.rain = append(g.rain, rainSample{})
		copy(g.rain[i+1:], g.rain[i:])
		g.rain[i] = s
	}
	now := g.newestRain()
	// Keep the longest window plus the clearing time.
	keep := maxDur(rs.Rainstorm.Blue.Window, rs.Rainstorm.Yellow.Window, rs.Rainstorm.Orange.Window,
		rs.Rainstorm.Red.Window, rs.HeavyRain.Window) + time.Hour
	cut := 0
	for cut < len(g.rain) && g.rain[cut].ts < now-int64(keep) {
		cut++
	}
	if cut > 0 {
		g.rain = append(g.rain[:0], g.rain[cut:]...)
	}
	g.evalRainstorm(e, now)
	g.evalHeavyRain(e, now)
}

func (g *gaugeState) newestRain() int64 {
	if len(g.rain) == 0 {
		return 0
	}
	return g.rain[len(g.rain)-1].ts
}

// accumulate returns the rain that fell in (now-w, now] and whether the
// reports cover that window without a gap longer than maxGap (an uncovered
// stretch is unknown rain, not zero).
func (g *gaugeState) accumulate(now int64, w, maxGap time.Duration) (mm float64, complete bool) {
	from := now - int64(w)
	covered := from // the window is covered up to here
	complete = true
	for _, s := range g.rain {
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
			// Only the part inside the window, assuming even rain over the
			// report's interval.
			if s.dur > 0 {
				mm += float64(s.mm) * float64(end-from) / float64(s.dur)
			}
		} else {
			mm += float64(s.mm)
		}
		if end > covered {
			covered = end
		}
	}
	if now-covered > int64(maxGap) {
		complete = false
	}
	return mm, complete
}

// evalRainstorm updates the CMA level at event time now. A level holds
// while its accumulation reaches its threshold; a level that held stays
// held while its window has a gap, since missing reports are not zero rain.
// The alert's level is the highest that held within clear_after.
func (g *gaugeState) evalRainstorm(e *Engine, now int64) {
	rr := &e.m.rules.Rainstorm
	levels := [5]*config.RainLevel{nil, &rr.Blue, &rr.Yellow, &rr.Orange, &rr.Red}
	sums := map[string]any{}
	for l := 1; l <= 4; l++ {
		mm, complete := g.accumulate(now, levels[l].Window, rr.MaxGap)
		sums[levelNames[l]+"_mm"] = round1(mm)
		if mm >= levels[l].MM || (!complete && g.held[l] != 0 && l <= g.rainLevel) {
			g.held[l] = now
		}
	}
	level := 0
	for l := 4; l >= 1; l-- {
		if g.held[l] != 0 && now-g.held[l] < int64(rr.ClearAfter) {
			level = l
			break
		}
	}
	if level == g.rainLevel {
		return
	}
	prev := g.rainLevel
	g.rainLevel = level
	details := map[string]any{"level": levelNames[level], "previous_level": levelNames[prev]}
	for k, v := range sums {
		details[k] = v
	}
	if level > 0 {
		details["threshold_mm"] = levels[level].MM
		details["window_h"] = levels[level].Window.Hours()
	}
	switch {
	case prev == 0:
		g.storm = cond{firing: true, started: now, version: 1}
		details["change"] = "raised"
		e.emit(RuleRainstorm, telemetry.AlertFiring, 1, levels[level].Severity, g.subject(e), now, now, g.location(), details)
	case level == 0:
		g.storm.firing = false
		g.storm.version++
		details["change"] = "cleared"
		e.emit(RuleRainstorm, telemetry.AlertResolved, g.storm.version, levels[prev].Severity, g.subject(e),
			g.storm.started, now, g.location(), details)
		g.held = [5]int64{}
	default:
		g.storm.version++
		details["change"] = "upgraded"
		if level < prev {
			details["change"] = "downgraded"
		}
		e.emit(RuleRainstorm, telemetry.AlertFiring, g.storm.version, levels[level].Severity, g.subject(e),
			g.storm.started, now, g.location(), details)
	}
}

// evalHeavyRain updates 短时强降水 at event time now.
func (g *gaugeState) evalHeavyRain(e *Engine, now int64) {
	hr := &e.m.rules.HeavyRain
	mm, complete := g.accumulate(now, hr.Window, e.m.rules.Rainstorm.MaxGap)
	if mm >= hr.MM || (!complete && g.heavy.firing) {
		g.heavyHeld = now
	}
	details := map[string]any{"mm": round1(mm), "threshold_mm": hr.MM, "window_h": hr.Window.Hours()}
	switch {
	case !g.heavy.firing && g.heavyHeld == now:
		g.heavy = cond{firing: true, started: now, version: 1}
		e.emit(RuleHeavyRain, telemetry.AlertFiring, 1, hr.Severity, g.subject(e), now, now, g.location(), details)
	case g.heavy.firing && now-g.heavyHeld >= int64(hr.ClearAfter):
		g.heavy.firing = false
		g.heavy.version++
		e.emit(RuleHeavyRain, telemetry.AlertResolved, g.heavy.version, hr.Severity, g.subject(e),
			g.heavy.started, now, g.location(), details)
	}
}

// onDepth takes one water-depth report.
func (g *gaugeState) onDepth(e *Engine, ts int64, d telemetry.DepthReading) {
	wr := &e.m.rules.Waterlogging
	newest := int64(0)
	if g.nDepth > 0 {
		newest = g.depth[(g.nDepth-1)%len(g.depth)].ts
	}
	if ts < newest {
		if newest-ts > int64(e.m.rules.ReorderWindow) {
			e.met.skipped.WithLabelValues("too_late").Inc()
		} else {
			e.met.skipped.WithLabelValues("late").Inc()
		}
		g.heard(e, ts)
		return
	}
	g.heard(e, ts)
	g.depth[g.nDepth%len(g.depth)] = depthSample{ts: ts, cm: float32(d.DepthCM)}
	g.nDepth++
	warn, closeCM := wr.WarnCM, wr.CloseCM
	if g.cfg.WarnCM > 0 {
		warn = g.cfg.WarnCM
	}
	if g.cfg.CloseCM > 0 {
		closeCM = g.cfg.CloseCM
	}
	cm := d.DepthCM
	target := 0
	switch {
	case cm >= closeCM:
		target = 2
	case cm >= warn:
		target = 1
	}
	// Rise at once; fall one level at a time, each only after the depth has
	// stayed under that level's threshold minus the hysteresis for
	// clear_after.
	g.belowClose = belowSince(g.belowClose, cm < closeCM-wr.HysteresisCM, ts)
	g.below = belowSince(g.below, cm < warn-wr.HysteresisCM, ts)
	lvl := max(g.depthLvl, target)
	if lvl == 2 && g.belowClose != 0 && ts-g.belowClose >= int64(wr.ClearAfter) {
		lvl = 1
	}
	if lvl == 1 && g.below != 0 && ts-g.below >= int64(wr.ClearAfter) {
		lvl = 0
	}
	if lvl > 0 && float32(cm) > g.depthPeak {
		g.depthPeak = float32(cm)
	}
	if lvl == g.depthLvl {
		return
	}
	prev := g.depthLvl
	g.depthLvl = lvl
	sev := func(l int) string {
		if l == 2 {
			return wr.CloseSev
		}
		return wr.WarnSeverity
	}
	names := [...]string{"none", "warning", "road_closure"}
	details := map[string]any{"depth_cm": round1(cm), "level": names[lvl], "previous_level": names[prev],
		"warn_cm": warn, "close_cm": closeCM, "rise_cm_per_h": round1(g.riseRate()), "peak_cm": round1(float64(g.depthPeak))}
	switch {
	case prev == 0:
		g.waterlog = cond{firing: true, started: ts, version: 1}
		e.emit(RuleWaterlogging, telemetry.AlertFiring, 1, sev(lvl), g.subject(e), ts, ts, g.location(), details)
	case lvl == 0:
		g.waterlog.firing = false
		g.waterlog.version++
		g.depthPeak = 0
		e.emit(RuleWaterlogging, telemetry.AlertResolved, g.waterlog.version, sev(prev), g.subject(e),
			g.waterlog.started, ts, g.location(), details)
	default:
		g.waterlog.version++
		e.emit(RuleWaterlogging, telemetry.AlertFiring, g.waterlog.version, sev(lvl), g.subject(e),
			g.waterlog.started, ts, g.location(), details)
	}
}

// belowSince keeps the start of a stretch during which under holds.
func belowSince(since int64, under bool, ts int64) int64 {
	switch {
	case !under:
		return 0
	case since == 0:
		return ts
	}
	return since
}

// riseRate is the depth's rate of change over about the last 10 minutes,
// in cm per hour.
func (g *gaugeState) riseRate() float64 {
	n := min(g.nDepth, len(g.depth))
	if n < 2 {
		return 0
	}
	last := g.depth[(g.nDepth-1)%len(g.depth)]
	first := last
	for k := 2; k <= n; k++ {
		s := g.depth[(g.nDepth-k)%len(g.depth)]
		first = s
		if last.ts-s.ts >= int64(10*time.Minute) {
			break
		}
	}
	dt := float64(last.ts-first.ts) / float64(time.Hour)
	if dt <= 0 {
		return 0
	}
	return float64(last.cm-first.cm) / dt
}

// removed resolves the alerts of a gauge that left the configuration.
func (g *gaugeState) removed(e *Engine) {
	g.queued = -1
	d := map[string]any{"reason": "removed from configuration"}
	now := e.wm
	if g.offline.firing {
		g.offline.version++
		e.emit(RuleSensorOffline, telemetry.AlertResolved, g.offline.version, e.m.rules.SensorOffline.Severity, g.subject(e), g.offline.started, now, g.location(), d)
	}
	if g.storm.firing {
		g.storm.version++
		e.emit(RuleRainstorm, telemetry.AlertResolved, g.storm.version, config.SeverityMinor, g.subject(e), g.storm.started, now, g.location(), d)
	}
	if g.heavy.firing {
		g.heavy.version++
		e.emit(RuleHeavyRain, telemetry.AlertResolved, g.heavy.version, e.m.rules.HeavyRain.Severity, g.subject(e), g.heavy.started, now, g.location(), d)
	}
	if g.waterlog.firing {
		g.waterlog.version++
		e.emit(RuleWaterlogging, telemetry.AlertResolved, g.waterlog.version, e.m.rules.Waterlogging.WarnSeverity, g.subject(e), g.waterlog.started, now, g.location(), d)
	}
}

func maxDur(ds ...time.Duration) time.Duration {
	m := time.Duration(0)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
