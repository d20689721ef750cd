package simulators

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Truck kinematics and the trip cycle.
const (
	minCruiseKmh = 20.0
	maxCruiseKmh = 50.0
	turnSpeed    = 5.0 // m/s (18 km/h) through a turn
	gateSpeed    = 3.5 // m/s into or out of a site
	accelLoaded  = 0.6 // m/s²
	accelEmpty   = 0.9
	brakeComfort = 1.5 // m/s², used to plan stops
	brakeMax     = 3.0
	creepSpeed   = 1.0 // m/s, so a truck always reaches a stop point

	redLightP   = 0.3 // chance a signalised intersection is red at night
	maxSubStep  = 1.0 // seconds of model time per integration step
	maxStepGap  = 60.0
	stopHorizon = 200.0 // metres ahead checked for speed limits
)

// Sensor and GPS behaviour.
const (
	sensorsEvery    = 5     // a sensors message every 5th fix, and on change
	loadChangeKg    = 500   // a load change that triggers a sensors message
	invalidFixP     = 0.004 // per fix
	meanGapEvery    = 1500  // seconds of driving between signal gaps, on average
	minGapS         = 30
	maxGapS         = 120
	maxBacklog      = 1024 // buffered messages before a gap is cut short
	uncoveredTripP  = 0.02 // loaded trips driven with the cover open (a violation)
	coverFaultTripP = 0.005
)

// The offences a truck commits now and then by itself, per loaded trip (a
// recorded night sets these rates through its Injection instead), and how.
const (
	overloadTripP = 0.01  // loaded to 120–145 % of its rated load (超量装载)
	unwashedTripP = 0.02  // leaves a site with a wash area without washing (带泥上路)
	spillTripP    = 0.005 // loses 15–35 % of its load at speed (道路抛洒)
	glitchTripP   = 0.01  // its load cell reads 20–45 % low for 8–30 s at speed, then right again

	washMinS, washMaxS     = 25, 40 // a wash stop in the site's wash area before leaving
	spillMinKmh            = 20     // spills and glitches happen above this speed, clear of every site
	glitchMinS, glitchMaxS = 8, 30
	spillQuietS            = 75 // no signal gap starts this long after a spill, so its confirmation is sent live
)

type truckPhase uint8

const (
	phWaiting  truckPhase = iota // at the construction site, waiting for the excavator
	phLoading                    // cover open, load rising
	phSealing                    // cover closed, about to leave
	phDriving                    // on the road, loaded or empty
	phQueueing                   // at the disposal site, waiting to tip
	phDumping                    // body raised, load falling
	phLeaving                    // body down, closing up
	phRoadDump                   // an injected roadside dump (offline playback only, see injector)
)

// truck is one muck truck's night: the trip cycle, its GPS terminal and its
// sensors. Step is its only entry point; it is not safe for concurrent use.
type truck struct {
	rng     *rand.Rand
	w       *world
	c, d    int // permit: construction site, disposal site
	hasLoad bool

	phase  truckPhase
	t, dur float64 // seconds in phase, planned duration of a stationary phase
	loaded bool
	rt     *route
	s, v   float64 // metres along rt, m/s
	cruise float64 // m/s, wanders within [minCruiseKmh, maxCruiseKmh]
	base   float64 // the truck's preferred cruise when loaded, m/s
	red    float64 // seconds left at a red light
	stopAt int     // route point with a red light ahead, or -1
	redFor float64 // how long that light stays red
	seen   int     // last route point passed
	lights int     // last route point whose light has been decided
	at     xy      // parking spot while stationary
	hdg    float64 // last heading, degrees

	load, target, residual float64 // kg
	rated                  float64 // kg, RatedLoadKg

	// The loaded trip's wash stop and offences, in metres along rt (-1
	// none); see planTrip.
	washAt, washFor   float64 // where it stops to wash, and for how many seconds
	spillAt, glitchAt float64
	spillF, glitchF   float64 // fraction of the load spilt, or missing from the reading
	glitchFor         float64 // seconds the glitch lasts
	glitchLeft, quiet float64 // seconds left of a glitch, of the quiet after a spill
	cover             telemetry.Cover
	body              telemetry.Body
	tripCover         telemetry.Cover // cover while driving loaded this trip

	sigma    float64 // GPS noise, metres
	nx, ny   float64 // correlated GPS noise, metres
	sats     int
	lastGood [2]float64 // last valid lat, lon
	fixes    uint64
	gpsSeq   uint64
	sensSeq  uint64
	gap      float64 // seconds of signal gap left
	backlog  []telemetry.Record
	sent     telemetry.SensorState // last sensors message
	hasSent  bool
	last     time.Time

	// inj, when set, injects violations for ground truth (NewTruckModel);
	// Run never sets it, so Run's trucks behave and draw random numbers
	// exactly as without it.
	inj *injector
}

// newTruck makes the index-th truck under seed, at a random point of its
// trip cycle so that a fleet starts spread over the night.
func newTruck(w *world, seed int64, index int, hasLoad bool) *truck {
	rng := truckRand(seed, index)
	c, d := assignPermit(rng, w)
	t := &truck{rng: rng, w: w, c: c, d: d, hasLoad: hasLoad, stopAt: -1, seen: -1,
		body: telemetry.BodyDown, cover: telemetry.CoverClosed,
		sigma: 3 + 2*rng.Float64(), sats: 6 + rng.IntN(9), rated: RatedLoadKg(seed, index),
		washAt: -1, spillAt: -1, glitchAt: -1}
	t.base = kmh(26 + 14*rng.Float64())
	t.residual = 50 * rng.Float64()
	t.target = t.loadTarget(false, rng.Float64())
	t.load = t.residual
	t.nx, t.ny = t.sigma*rng.NormFloat64(), t.sigma*rng.NormFloat64()
	// Start phases weighted roughly by their share of the ~30 min cycle.
	switch x := rng.Float64(); {
	case x < 0.12:
		t.parkAt(w.construction[c])
		t.enter(phWaiting, 0, 180)
		t.t = t.dur * rng.Float64()
	case x < 0.25:
		t.parkAt(w.construction[c])
		t.enter(phLoading, 240, 480)
		t.t = t.dur * rng.Float64()
		t.loadingSensors()
	case x < 0.58:
		t.startDrive(true)
		t.s = t.rt.total * rng.Float64()
		t.v = t.cruise
	case x < 0.63:
		t.parkAt(w.disposal[d])
		t.load = t.target
		t.enter(phQueueing, 10, 60)
	default:
		t.startDrive(false)
		t.s = t.rt.total * rng.Float64()
		t.v = t.cruise
	}
	if t.phase == phDriving {
		_, k := t.rt.at(t.s)
		t.seen, t.lights = k-1, k-1
		t.hdg = bearing(t.rt.pts[k-1], t.rt.pts[k])
		t.skipPassed()
	}
	return t
}

// skipPassed drops the trip's wash stop and offences planned where the
// truck, starting the night mid-trip, has already been.
func (t *truck) skipPassed() {
	for _, at := range []*float64{&t.washAt, &t.spillAt, &t.glitchAt} {
		if *at >= 0 && *at < t.s {
			*at = -1
		}
	}
}

// loadTarget is what the truck loads, by a uniform draw u: 55–95 % of its
// rated load, or 120–145 % overloaded (14–26 t without a rated load).
func (t *truck) loadTarget(over bool, u float64) float64 {
	switch {
	case t.rated <= 0:
		return 14000 + 12000*u
	case over:
		return t.rated * (1.2 + 0.25*u)
	}
	return t.rated * (0.55 + 0.4*u)
}

func kmh(v float64) float64 { return v / 3.6 }

// Step advances the truck to now and appends what its terminal publishes at
// now: a GPS fix, a sensors message every sensorsEvery fixes or on change,
// and after a signal gap the buffered messages (older ts and seq) right after
// the first live fix. The first call only sets the clock.
func (t *truck) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	dt := 0.0
	if !t.last.IsZero() {
		dt = clamp(now.Sub(t.last).Seconds(), 0, maxStepGap)
	}
	t.last = now
	if t.inj != nil {
		t.inj.now = now
	}
	for rem := dt; rem > 1e-9; rem -= maxSubStep {
		t.advance(math.Min(rem, maxSubStep))
	}
	if t.inj != nil && t.inj.silent() {
		return out // the terminal is off: nothing is measured, buffered or sent
	}
	if t.gap <= 0 && t.phase == phDriving && t.v > 3 && (t.inj == nil || !t.inj.busy()) && t.washAt < 0 &&
		t.glitchLeft <= 0 && t.quiet <= 0 && t.rng.Float64() < dt/meanGapEvery {
		t.gap = minGapS + (maxGapS-minGapS)*t.rng.Float64() // into an underpass
	}
	fix := t.fix(now)
	sens, sendSens := t.sensors(now)
	if t.inj != nil && t.phase != phDriving {
		// Recorded nights keep tunnels on the road: a gap ends when the
		// truck reaches a site or stops for an injected dump, so what it
		// does there is sent live.
		t.gap = 0
	}
	if t.gap > 0 {
		t.gap -= dt
		t.backlog = append(t.backlog, fix)
		if sendSens {
			t.backlog = append(t.backlog, sens)
		}
		if len(t.backlog) >= maxBacklog {
			t.gap = 0
		}
		return out
	}
	out = append(out, fix)
	if len(t.backlog) > 0 {
		out = append(out, t.backlog...)
		clear(t.backlog)
		t.backlog = t.backlog[:0]
	}
	if sendSens {
		out = append(out, sens)
	}
	return out
}

// advance runs the trip cycle for h ≤ maxSubStep seconds.
func (t *truck) advance(h float64) {
	t.t += h
	switch t.phase {
	case phWaiting:
		if t.t >= t.dur {
			t.enter(phLoading, 240, 480)
		}
	case phLoading:
		t.loadingSensors()
		if t.t >= t.dur {
			t.load = t.target
			t.cover = t.tripCoverDraw()
			t.enter(phSealing, 20, 60)
		}
	case phSealing:
		if t.t >= t.dur {
			t.startDrive(true)
		}
	case phDriving:
		t.drive(h)
		if t.inj != nil {
			t.inj.driving(t, h)
		}
		if t.phase == phDriving {
			t.offences(h)
		}
		if t.phase == phDriving && t.s >= t.rt.total {
			if t.loaded {
				t.parkAt(t.w.disposal[t.d])
				t.cover = telemetry.CoverClosed
				t.enter(phQueueing, 10, 60)
			} else {
				t.parkAt(t.w.construction[t.c])
				t.enter(phWaiting, 0, 180)
			}
		}
	case phQueueing:
		if t.t >= t.dur {
			t.cover, t.body = telemetry.CoverOpen, telemetry.BodyRaised
			t.enter(phDumping, 30, 60)
		}
	case phDumping:
		f := math.Min(1, t.t/(0.8*t.dur))
		t.load = t.target*(1-f) + t.residual*f
		if t.t >= t.dur {
			t.load, t.body = t.residual, telemetry.BodyDown
			t.enter(phLeaving, 10, 25)
		}
	case phLeaving:
		if t.t >= 5 {
			t.cover = telemetry.CoverClosed
		}
		if t.t >= t.dur {
			t.startDrive(false)
		}
	case phRoadDump:
		t.inj.roadDump(t, h)
	}
}

// enter starts a stationary phase lasting between lo and hi seconds.
func (t *truck) enter(p truckPhase, lo, hi float64) {
	t.phase, t.t, t.v = p, 0, 0
	t.dur = lo + (hi-lo)*t.rng.Float64()
	if p == phLoading {
		over, u := t.rng.Float64() < overloadTripP, t.rng.Float64()
		if t.inj != nil {
			over = t.inj.overload()
		}
		t.target = t.loadTarget(over, u)
	}
}

// loadingSensors sets cover and load for the loading phase at t.t.
func (t *truck) loadingSensors() {
	t.cover = telemetry.CoverClosed
	if t.t >= 15 {
		t.cover = telemetry.CoverOpen
	}
	f := clamp((t.t-20)/(t.dur-40), 0, 1)
	t.load = t.residual + f*(t.target-t.residual)
}

func (t *truck) tripCoverDraw() telemetry.Cover {
	switch x := t.rng.Float64(); {
	case x < uncoveredTripP:
		t.tripCover = telemetry.CoverOpen
	case x < uncoveredTripP+coverFaultTripP:
		t.tripCover = telemetry.CoverFault
	default:
		t.tripCover = telemetry.CoverClosed
	}
	return t.tripCover
}

// parkAt puts the truck at a spot within 10 m of the site centre.
func (t *truck) parkAt(s worldSite) {
	a := 2 * math.Pi * t.rng.Float64()
	r := 10 * math.Sqrt(t.rng.Float64())
	t.at = s.p.add(xy{r * math.Cos(a), r * math.Sin(a)})
}

// startDrive sets off for the disposal site (loaded) or back to the
// construction site (empty).
func (t *truck) startDrive(loaded bool) {
	t.phase, t.t, t.loaded = phDriving, 0, loaded
	t.s, t.v, t.red, t.stopAt, t.seen, t.lights = 0, 0, 0, -1, 0, 0
	if loaded {
		t.rt = t.w.out[t.c][t.d]
		t.cruise = t.base
		t.load = t.target
		if t.tripCover == telemetry.CoverUnknown {
			t.tripCoverDraw()
		}
		t.cover = t.tripCover
	} else {
		t.rt = t.w.back[t.c][t.d]
		t.cruise = t.base + kmh(6)
		t.load = t.residual
		t.cover = telemetry.CoverClosed
	}
	t.body = telemetry.BodyDown
	t.cruise = clamp(t.cruise, kmh(minCruiseKmh), kmh(maxCruiseKmh))
	t.washAt, t.spillAt, t.glitchAt, t.glitchLeft, t.quiet = -1, -1, -1, 0, 0
	if loaded {
		var u [8]float64
		for i := range u {
			u[i] = t.rng.Float64()
		}
		unwashed, spill, glitch := u[0] < unwashedTripP, u[1] < spillTripP, u[2] < glitchTripP
		if t.inj != nil {
			unwashed, spill, glitch = t.inj.tripOffences()
		}
		t.planTrip(u, unwashed, spill, glitch)
	}
	if t.inj != nil {
		t.inj.plan(t, loaded)
	}
}

// planTrip plans a loaded trip by the uniform draws u: a wash stop of
// washMinS–washMaxS in the wash area, if its site has one, unless it leaves
// unwashed; where along the route it spills, and how much, if it does; and
// where its load cell glitches, how much and for how long.
func (t *truck) planTrip(u [8]float64, unwashed, spill, glitch bool) {
	t.washAt, t.spillAt, t.glitchAt = -1, -1, -1
	if t.w.construction[t.c].wash != nil && !unwashed {
		t.washAt, t.washFor = washStopM, washMinS+(washMaxS-washMinS)*u[3]
	}
	if spill {
		t.spillAt, t.spillF = (0.25+0.45*u[4])*t.rt.total, 0.15+0.2*u[5]
	}
	if glitch {
		t.glitchAt, t.glitchF = (0.25+0.45*u[6])*t.rt.total, 0.2+0.25*u[7]
		t.glitchFor = glitchMinS + (glitchMaxS-glitchMinS)*u[5]
	}
}

// offences runs a loaded trip's spill and load-cell glitch once the truck
// has passed the planned point, at spillMinKmh or more and clear of every
// site, with its terminal live; otherwise they are tried again retryM
// further on, up to 90 % of the route.
func (t *truck) offences(h float64) {
	t.glitchLeft = math.Max(0, t.glitchLeft-h)
	t.quiet = math.Max(0, t.quiet-h)
	ok := t.v >= kmh(spillMinKmh) && t.gap <= 0 && t.glitchLeft == 0 && t.quiet == 0 && t.load >= 1000 &&
		(t.inj == nil || !t.inj.busy() && !t.inj.now.After(t.inj.notAfter))
	due := func(at *float64) bool {
		if *at < 0 || t.s < *at {
			return false
		}
		if ok && t.clearOfSites(0) {
			*at = -1
			return true
		}
		if *at = t.s + retryM; *at > 0.9*t.rt.total {
			*at = -1
		}
		return false
	}
	switch {
	case due(&t.spillAt):
		t.load *= 1 - t.spillF
		t.target = t.load // what is left to tip
		t.quiet = spillQuietS
	case due(&t.glitchAt):
		t.glitchLeft = t.glitchFor
	}
}

// clearOfSites reports whether the truck is well away from every site's
// fence (a site's radius plus the demo city's SiteMarginM plus dumpClearM),
// and will be after driving on extraM metres.
func (t *truck) clearOfSites(extraM float64) bool {
	p := t.truePos()
	for _, ss := range [][]worldSite{t.w.construction, t.w.disposal} {
		for _, s := range ss {
			if dist(p, s.p) < s.RadiusM+SiteMarginM+dumpClearM+extraM {
				return false
			}
		}
	}
	return true
}

// drive moves the truck h seconds along its route: cruise speed wandering in
// 20–50 km/h, slowing for turns and site gates, stopping at red lights.
func (t *truck) drive(h float64) {
	rt := t.rt
	if t.red > 0 {
		t.red -= h
		t.v = 0
		return
	}
	// Wander the cruise speed (Ornstein–Uhlenbeck towards the truck's base).
	want := t.base
	if !t.loaded {
		want += kmh(6)
	}
	t.cruise += 0.02*(want-t.cruise)*h + 0.35*math.Sqrt(h)*t.rng.NormFloat64()
	t.cruise = clamp(t.cruise, kmh(minCruiseKmh), kmh(maxCruiseKmh))

	allowed := t.cruise
	for i := t.seen + 1; i < len(rt.pts); i++ {
		d := rt.cum[i] - t.s
		if d > stopHorizon {
			break
		}
		if d < 0 {
			continue
		}
		if rt.light[i] && i > t.lights {
			t.decideLight(i)
		}
		lim := rt.limit[i]
		if i == t.stopAt {
			lim = 0
		}
		if math.IsInf(lim, 1) {
			continue
		}
		allowed = math.Min(allowed, math.Sqrt(lim*lim+2*brakeComfort*d))
		if lim == 0 {
			break
		}
	}
	if t.washAt >= t.s {
		allowed = math.Min(allowed, math.Sqrt(2*brakeComfort*(t.washAt-t.s)))
	}
	acc := accelEmpty
	if t.loaded {
		acc = accelLoaded
	}
	if t.v < allowed {
		t.v = math.Min(allowed, t.v+acc*h)
	} else {
		t.v = math.Max(allowed, t.v-brakeMax*h)
	}
	t.v = math.Max(t.v, creepSpeed)
	next := t.s + t.v*h
	if t.washAt >= 0 && next >= t.washAt {
		// Stopped in the wash area: wait there as at a red light.
		next, t.v, t.red, t.washAt = t.washAt, 0, t.washFor, -1
		t.s = next
		return
	}
	if t.stopAt >= 0 && next >= rt.cum[t.stopAt] {
		next = rt.cum[t.stopAt]
		t.v = 0
		t.red = t.redFor
		t.stopAt = -1
	}
	if next >= rt.total {
		next, t.v = rt.total, 0
	}
	t.s = next
	for t.seen+1 < len(rt.pts) && rt.cum[t.seen+1] <= t.s {
		t.seen++
	}
}

// decideLight settles whether the light at route point i is red on arrival.
func (t *truck) decideLight(i int) {
	t.lights = i
	if t.stopAt < 0 && t.rng.Float64() < redLightP {
		t.stopAt = i
		t.redFor = 10 + 35*t.rng.Float64()
	}
}
