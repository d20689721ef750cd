package simulators

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Injected violations, for recorded nights with ground truth (package
// scenario). Each is planned when a trip starts and happens when the truck
// passes the planned point. A roadside dump blocked there (by another
// injection, a signal gap or a site nearby) is tried again 200 m further
// on, up to 90 % of the route; a blocked detour or outage is dropped. A
// detour lies within one straight stretch of the route, long enough for
// the truck to drive it at top speed while away, so that it is off the
// route by its whole offset.
const (
	detourRampS     = 20  // seconds to swing out to the detour's offset, and back
	detourMinHoldS  = 60  // seconds held at the offset, at least
	detourMaxHoldS  = 120 //  … at most
	detourMinM      = 250 // lateral offset, metres
	detourMaxM      = 400 //
	detourMarginM   = 150 // a detour starts and ends this far inside a straight stretch of its route
	dumpClearM      = 100 // a roadside dump stays this far outside every site's fence
	outageMinS      = 360 // terminal outages (power cut): 6–10 min
	outageMaxS      = 600 //
	retryM          = 200 // a blocked injection is tried again this far on
	dumpCoverOpenS  = 6   // after stopping: cover opens …
	dumpBodyUpS     = 10  // … body goes up …
	dumpMinS        = 30  // … for 30–60 s …
	dumpMaxS        = 60  //
	dumpCoverCloseS = 5   // … body down, then the cover closes …
	dumpResumeS     = 5   // … and the truck drives on
)

// injector makes one truck commit, now and then, the violations a
// recorded night needs so that every rule is exercised: detours off its
// permitted route (loaded), roadside dumps (loaded) and terminal outages
// (any trip); and it decides, in place of the truck's own rates, which
// loaded trips are overloaded, leave without washing, spill or have a
// load-cell glitch (see planTrip). It draws from its own random stream;
// the truck's own stream is consumed as without it until the first
// injection changes the truck's course.
type injector struct {
	rng                                   *rand.Rand
	detourP, dumpP, outageP               float64
	overloadP, unwashedP, spillP, glitchP float64
	notAfter                              time.Time // no injection starts after this
	now                                   time.Time // the truck's clock, set by Step

	// The current trip's plan, metres along the route; -1 = none.
	detourAt, dumpAt, outageAt float64
	detourDir                  xy // unit direction of the detour's stretch

	detourOn       bool
	detourT, hold  float64 // seconds into the detour, seconds held at the offset
	detourOff      xy      // full lateral offset
	outageUntil    time.Time
	dumpStopped    bool
	dumpT, dumpDur float64 // seconds since stopping, seconds the body stays up
	dumpFrom       float64 // load when the body went up, kg
}

func newInjector(seed int64, index int, o *Injection) *injector {
	return &injector{rng: rand.New(rand.NewPCG(uint64(seed), 0x696e6a65<<32|uint64(index))),
		detourP: o.DetourP, dumpP: o.DumpP, outageP: o.OutageP, overloadP: o.OverloadP, unwashedP: o.UnwashedP,
		spillP: o.SpillP, glitchP: o.GlitchP, notAfter: o.NotAfter, detourAt: -1, dumpAt: -1, outageAt: -1}
}

// overload decides whether the load about to start is overloaded.
func (j *injector) overload() bool {
	return j.rng.Float64() < j.overloadP && !j.now.After(j.notAfter)
}

// tripOffences decides whether the loaded trip starting now leaves its
// site without washing, spills and has a load-cell glitch.
func (j *injector) tripOffences() (unwashed, spill, glitch bool) {
	u, v, w := j.rng.Float64(), j.rng.Float64(), j.rng.Float64()
	ok := !j.now.After(j.notAfter)
	return ok && u < j.unwashedP, ok && v < j.spillP, ok && w < j.glitchP
}

// plan draws the injections of a trip that starts now. It always draws the
// same count of numbers, so one trip's plan does not shift the next one's.
func (j *injector) plan(t *truck, loaded bool) {
	u := [8]float64{}
	for i := range u {
		u[i] = j.rng.Float64()
	}
	total := t.rt.total
	j.detourAt, j.dumpAt, j.outageAt = -1, -1, -1
	if loaded && u[0] < j.detourP {
		j.hold = detourMinHoldS + (detourMaxHoldS-detourMinHoldS)*u[6]
		need := (2*detourRampS + j.hold) * kmh(maxCruiseKmh)
		j.detourAt, j.detourDir = straightStretch(t.rt, need+2*detourMarginM, u[1], u[7])
		if j.detourAt >= 0 {
			j.detourAt += detourMarginM
		}
	}
	if loaded && u[2] < j.dumpP {
		j.dumpAt = (0.3 + 0.4*u[3]) * total
	}
	if u[4] < j.outageP {
		j.outageAt = (0.2 + 0.6*u[5]) * total
	}
}

// busy reports whether an injection is under way (no signal gap may start).
func (j *injector) busy() bool {
	return j.detourOn || j.silent()
}

// silent reports whether the terminal is off.
func (j *injector) silent() bool { return j.now.Before(j.outageUntil) }

// offset is the detour's current lateral displacement.
func (j *injector) offset() xy {
	if !j.detourOn {
		return xy{}
	}
	f := smoothstep(0, detourRampS, j.detourT) * (1 - smoothstep(detourRampS+j.hold, 2*detourRampS+j.hold, j.detourT))
	return j.detourOff.scale(f)
}

// driving runs after the truck moved for h seconds along its route: it advances a detour and starts what the plan asks for here.
func (j *injector) driving(t *truck, h float64) {
	if j.detourOn {
		j.detourT += h
		if j.detourT >= 2*detourRampS+j.hold || t.s >= t.rt.total {
			j.detourOn = false
		}
	}
	late := j.now.After(j.notAfter)
	limit := 0.9 * t.rt.total
	free := !j.detourOn && !j.silent() && t.gap <= 0
	retry := func(at *float64) {
		*at = t.s + retryM
		if *at > limit || late {
			*at = -1
		}
	}
	switch {
	case j.outageAt >= 0 && t.s >= j.outageAt:
		if !free || late {
			j.outageAt = -1
			break
		}
		if t.v <= 3 {
			retry(&j.outageAt)
			break
		}
		j.outageAt = -1
		d := outageMinS + (outageMaxS-outageMinS)*j.rng.Float64()
		j.outageUntil = j.now.Add(time.Duration(d * float64(time.Second)))
	case j.detourAt >= 0 && t.s >= j.detourAt:
		if !free || late {
			j.detourAt = -1
			break
		}
		j.detourAt = -1
		side := 1.0
		if j.rng.Float64() < 0.5 {
			side = -1
		}
		mag := detourMinM + (detourMaxM-detourMinM)*j.rng.Float64()
		d := j.detourDir
		j.detourOff = xy{-d.Y, d.X}.scale(side * mag)
		j.detourOn, j.detourT = true, 0
	case j.dumpAt >= 0 && t.s >= j.dumpAt:
		// Clear of the sites where it will have braked to a stop.
		if !free || !t.loaded || t.load < 1000 || late || !t.clearOfSites(t.v*t.v/(2*brakeComfort)) {
			retry(&j.dumpAt)
			break
		}
		j.dumpAt = -1
		t.phase, t.t = phRoadDump, 0
		j.dumpStopped, j.dumpT = false, 0
		j.dumpDur = dumpMinS + (dumpMaxS-dumpMinS)*j.rng.Float64()
	}
}

// straightStretch picks, by u, one of the straight stretches of r at least
// need metres long, and by v a point on it leaving need metres ahead; it
// returns where that point is along r and the stretch's direction, or -1.
func straightStretch(r *route, need, u, v float64) (float64, xy) {
	type stretch struct {
		from, to float64
		dir      xy
	}
	var ss []stretch
	for k := 1; k < len(r.pts); k++ {
		d := r.pts[k].sub(r.pts[k-1])
		l := d.norm()
		if l == 0 {
			continue
		}
		d = d.scale(1 / l)
		if n := len(ss); n > 0 && ss[n-1].dir.dot(d) > 0.9999 && ss[n-1].to == r.cum[k-1] {
			ss[n-1].to = r.cum[k]
			continue
		}
		ss = append(ss, stretch{r.cum[k-1], r.cum[k], d})
	}
	long := ss[:0]
	for _, s := range ss {
		if s.to-s.from >= need {
			long = append(long, s)
		}
	}
	if len(long) == 0 {
		return -1, xy{}
	}
	s := long[min(int(u*float64(len(long))), len(long)-1)]
	return s.from + v*(s.to-s.from-need), s.dir
}

// roadDump runs the roadside dump for h seconds: brake to a stop, open the
// cover, raise the body while the load falls to the residual, lower it,
// close the cover and drive on, empty, to the disposal site (where the
// truck then tips nothing).
func (j *injector) roadDump(t *truck, h float64) {
	if !j.dumpStopped {
		t.v = math.Max(0, t.v-brakeComfort*h)
		t.s = math.Min(t.rt.total, t.s+t.v*h)
		if t.v == 0 {
			j.dumpStopped, j.dumpT = true, 0
		}
		return
	}
	j.dumpT += h
	up, down := float64(dumpCoverOpenS+dumpBodyUpS), float64(dumpCoverOpenS+dumpBodyUpS)+j.dumpDur
	switch {
	case j.dumpT < dumpCoverOpenS:
	case j.dumpT < up:
		t.cover = telemetry.CoverOpen
		j.dumpFrom = t.load
	case j.dumpT < down:
		t.cover, t.body = telemetry.CoverOpen, telemetry.BodyRaised
		f := math.Min(1, (j.dumpT-up)/(0.8*j.dumpDur))
		t.load = j.dumpFrom*(1-f) + t.residual*f
	case j.dumpT < down+dumpCoverCloseS:
		t.body, t.load = telemetry.BodyDown, t.residual
	case j.dumpT < down+dumpCoverCloseS+dumpResumeS:
		t.cover = telemetry.CoverClosed
	default:
		t.cover, t.body, t.load = telemetry.CoverClosed, telemetry.BodyDown, t.residual
		t.target = t.residual // nothing left to tip at the disposal site
		t.phase, t.t = phDriving, 0
	}
}
