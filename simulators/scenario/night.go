package scenario

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// NightOptions configures Night. Zero values take the defaults.
type NightOptions struct {
	// Trucks, RainGauges and DepthPoints are how many devices to play,
	// the first of the demo registry's fleets (as simulators.Run takes
	// them).
	Trucks, RainGauges, DepthPoints int
	// Seed makes the night reproducible (as simulators.Options.Seed).
	Seed int64
	// Start is when the night begins, default 2026-07-15 20:00 in Weifang;
	// Duration how long it lasts, default 8h.
	Start    time.Time
	Duration time.Duration
	// Storm plays the rainstorm crossing the city (peaking ~1.25 h after
	// Start, over by 3.2 h); otherwise a drizzle under 1 mm/h.
	Storm bool
	// FixInterval is the trucks' GPS period, default 1s; GaugeInterval
	// the gauges' report period, default 60s.
	FixInterval, GaugeInterval time.Duration
	// Inject scales the rates of the injected violations (see Night):
	// 0 takes the defaults, 2 doubles them, a negative value injects none.
	Inject float64
}

// The default rates of injected violations.
const (
	detourP         = 0.01  // per loaded trip: a detour off the route
	roadDumpP       = 0.005 // per loaded trip: a roadside dump
	outageP         = 0.003 // per trip: a terminal outage of 6–10 min
	hoursFrac       = 0.02  // of trucks: a permit window that closes during the night
	noPermitFrac    = 0.005 // of trucks: a permit that expired a week before
	gaugeOutageFrac = 0.03  // of gauges and depth points: silent for 35–50 min
	overloadP       = 0.02  // per load: 120–145 % of the rated load
	unwashedP       = 0.03  // per loaded trip from a site with a wash area: no wash stop
	spillP          = 0.01  // per loaded trip: 15–35 % of the load spilt at speed
	glitchP         = 0.02  // per loaded trip: the load cell reads low for 8–30 s at speed
)

func (o NightOptions) withDefaults() NightOptions {
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 7, 15, 20, 0, 0, 0, shanghai)
	}
	if o.Duration <= 0 {
		o.Duration = 8 * time.Hour
	}
	if o.FixInterval <= 0 {
		o.FixInterval = time.Second
	}
	if o.GaugeInterval <= 0 {
		o.GaugeInterval = time.Minute
	}
	switch {
	case o.Inject == 0:
		o.Inject = 1
	case o.Inject < 0:
		o.Inject = 0
	}
	return o
}

// Night plays a simulated night (see StreamNight) and returns it with all
// its records in memory: about 1.2 records per truck per fix interval, so
// keep it to small nights; stream large ones with StreamNight.
func Night(o NightOptions) Scenario {
	var recs []telemetry.Record
	s := StreamNight(o, func(r *telemetry.Record) { recs = append(recs, *r) })
	s.Records = recs
	return s
}

// StreamNight plays a simulated night of the demo city in simulated time,
// without MQTT, and hands every record to emit in arrival order (emit must
// not keep r; it is reused). It returns the scenario without its records:
// the city and the complete ground truth.
//
// The devices are the simulator's own models (simulators.NewTruckModel,
// NewRainModels, NewDepthModels) stepped as Run steps them: every truck
// each FixInterval, every gauge and depth point each GaugeInterval. The
// city is simulators.DemoCity for the same counts and seed with the
// night's permits: windows covering the night (20:00-06:00 when the night
// lies within one), valid through its year. On top of what the models do
// by themselves (loaded trips with the cover open or faulty, tunnels with
// back-filled fixes, the storm; in a recorded night a tunnel ends where the
// road does, so what a truck does at a site is sent live), the night injects, at low rates scaled by
// Inject, every other violation: detours off the route, roadside dumps and
// terminal outages (signal_lost) by trucks, overloaded loads (overload),
// departures from a site with a wash area without the wash stop every other
// loaded truck makes (unwashed_exit), spills at speed (spillage) and
// load-cell glitches that recover (which must not be), trucks whose permit
// window closes during the night (outside_permit_hours) or whose permit
// expired (no_permit), and gauges silent for 35–50 minutes
// (sensor_offline). The demo city's 30 km/h residential zone raises
// zone_violation.
//
// The ground truth is derived by the judge (see judge.go) from the models'
// true state: true positions against the fences, corridors and zones,
// true rain (the rain field's integral, before the bucket quantises it) and
// true water depth against the thresholds, with the rules' dwells, clear
// times and sampling. Every alert the night raises is in Expect;
// noise-dependent ones are Optional.
func StreamNight(o NightOptions, emit func(r *telemetry.Record)) Scenario {
	o = o.withDefaults()
	end := o.Start.Add(o.Duration)
	city, roles := nightCity(o)
	j, err := newJudge(city)
	if err != nil {
		panic(fmt.Sprintf("scenario: night city: %v", err)) // built in code; covered by tests
	}
	inj := &simulators.Injection{DetourP: detourP * o.Inject, DumpP: roadDumpP * o.Inject,
		OutageP: outageP * o.Inject, OverloadP: overloadP * o.Inject, UnwashedP: unwashedP * o.Inject,
		SpillP: spillP * o.Inject, GlitchP: glitchP * o.Inject, NotAfter: end.Add(-20 * time.Minute)}
	trucks := make([]*nightTruck, o.Trucks)
	for i := range trucks {
		trucks[i] = &nightTruck{m: simulators.NewTruckModel(o.Seed, i, inj), j: j.truckList[i],
			dev: simulators.TruckDevice(i)}
	}
	var gauges []*nightGauge
	for i, m := range simulators.NewRainModels(o.RainGauges, o.Seed, o.Storm, o.Start, o.GaugeInterval) {
		gauges = append(gauges, &nightGauge{rain: m, j: j.gaugeList[i], dev: simulators.RainDevice(i)})
	}
	for i, m := range simulators.NewDepthModels(o.DepthPoints, o.Seed, o.Storm, o.Start, o.GaugeInterval) {
		gauges = append(gauges, &nightGauge{depth: m, j: j.gaugeList[o.RainGauges+i], dev: simulators.DepthDevice(i)})
	}
	outages := gaugeOutages(o, gauges)

	shards := newShards(trucks, j.pl)
	defer shards.close()
	var grec []telemetry.Record
	nextTruck, nextGauge := o.Start, o.Start
	for !nextTruck.After(end) || !nextGauge.After(end) {
		now := nextTruck
		if nextGauge.Before(now) {
			now = nextGauge
		}
		if now.Equal(nextGauge) {
			ns := now.UnixNano()
			for _, g := range gauges {
				g.j.tick(ns)
				if outages[g.dev].contains(now) {
					continue
				}
				grec = g.step(now, grec[:0])
				for k := range grec {
					emit(&grec[k])
				}
			}
			nextGauge = nextGauge.Add(o.GaugeInterval)
		}
		if now.Equal(nextTruck) {
			shards.step(now)
			for _, sh := range shards.shards {
				for k := range sh.out {
					emit(&sh.out[k])
				}
			}
			nextTruck = nextTruck.Add(o.FixInterval)
		}
	}
	j.advance(end.UnixNano())
	return Scenario{Name: fmt.Sprintf("night-%dt-%dr-%dd-seed%d", o.Trucks, o.RainGauges, o.DepthPoints, o.Seed),
		City: city, Expect: j.expect(), Start: o.Start.UTC(), Duration: o.Duration,
		Note: fmt.Sprintf("A simulated night from %s for %s (storm %v): %d trucks (%d with a permit window closing during "+
			"the night, %d with an expired permit), %d rain gauges, %d depth points (%d silent for a while), "+
			"fixes every %s, reports every %s, injection rates ×%g. Ground truth from the models' true state; "+
			"%d of %d expectations are Optional (noise decides).",
			o.Start.In(shanghai).Format("2006-01-02 15:04"), o.Duration, o.Storm, o.Trucks, roles.hours, roles.noPermit,
			o.RainGauges, o.DepthPoints, len(outages), o.FixInterval, o.GaugeInterval, o.Inject,
			countOptional(j), len(j.expect())),
	}
}

func countOptional(j *judge) int {
	n := 0
	for _, e := range j.expect() {
		if e.Optional {
			n++
		}
	}
	return n
}

// NightCity returns the city StreamNight(o) plays in, without playing the
// night: the same as its Scenario's City.
func NightCity(o NightOptions) *config.City {
	c, _ := nightCity(o.withDefaults())
	return c
}

// nightRoles counts the trucks given special permits.
type nightRoles struct{ hours, noPermit int }

// nightCity is the demo city with the night's permits.
func nightCity(o NightOptions) (*config.City, nightRoles) {
	c := simulators.DemoCity(o.Trucks, o.RainGauges, o.DepthPoints, o.Seed)
	end := o.Start.Add(o.Duration)
	w := nightWindow(o.Start, end)
	from := config.Date{Year: o.Start.In(shanghai).AddDate(0, 0, -1).Year(), Month: 1, Day: 1}
	to := config.Date{Year: end.In(shanghai).AddDate(0, 0, 1).Year(), Month: 12, Day: 31}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x726f6c65))
	var roles nightRoles
	for i := range c.Permits {
		p := &c.Permits[i]
		u, v := rng.Float64(), rng.Float64()
		p.ValidFrom, p.ValidTo, p.Windows = from, to, []config.Window{w}
		switch {
		case u < hoursFrac*o.Inject && w != (config.Window{Start: 0, End: 24 * 3600}):
			closes := o.Start.Add(time.Duration((0.25 + 0.5*v) * float64(o.Duration))).Truncate(time.Minute)
			if sec := secOfDay(closes); sec != w.Start {
				p.Windows = []config.Window{{Start: w.Start, End: sec}}
				roles.hours++
			}
		case u < (hoursFrac+noPermitFrac)*o.Inject:
			y, m, d := o.Start.In(shanghai).AddDate(0, 0, -7).Date()
			p.ValidFrom, p.ValidTo = config.Date{Year: y, Month: 1, Day: 1}, config.Date{Year: y, Month: int(m), Day: d}
			roles.noPermit++
		}
	}
	return c, roles
}

// nightWindow is the daily window of the night's permits: 20:00-06:00 if
// the night lies within one, else from half an hour before it starts to
// half an hour after it ends, on the half hour (the whole day for a night
// of 23 hours or more).
func nightWindow(start, end time.Time) config.Window {
	if end.Sub(start) >= 23*time.Hour {
		return config.Window{Start: 0, End: 24 * 3600}
	}
	ls := start.In(shanghai)
	open := time.Date(ls.Year(), ls.Month(), ls.Day(), 20, 0, 0, 0, shanghai)
	if ls.Hour() < 6 {
		open = open.AddDate(0, 0, -1)
	}
	if !start.Before(open) && !end.After(open.Add(10*time.Hour)) {
		return night
	}
	from := start.Add(-30 * time.Minute).Truncate(30 * time.Minute)
	to := end.Add(59 * time.Minute).Truncate(30 * time.Minute)
	w := config.Window{Start: secOfDay(from), End: secOfDay(to)}
	if w.End == 0 {
		w.End = 24 * 3600
	}
	return w
}

func secOfDay(t time.Time) int {
	h, m, s := t.In(shanghai).Clock()
	return h*3600 + m*60 + s
}

// span is a time interval [from, to).
type span struct{ from, to time.Time }

func (s span) contains(t time.Time) bool { return !t.Before(s.from) && t.Before(s.to) }

// gaugeOutages picks the gauges that fall silent, and when.
func gaugeOutages(o NightOptions, gauges []*nightGauge) map[string]span {
	out := map[string]span{}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x6f757467))
	room := o.Duration - 70*time.Minute
	for _, g := range gauges {
		u, v, w := rng.Float64(), rng.Float64(), rng.Float64()
		if u >= gaugeOutageFrac*o.Inject || room <= 0 {
			continue
		}
		from := o.Start.Add(10*time.Minute + time.Duration(v*float64(room)))
		out[g.dev] = span{from, from.Add(35*time.Minute + time.Duration(w*float64(15*time.Minute)))}
	}
	return out
}

// nightGauge is a rain gauge or depth point of the night.
type nightGauge struct {
	rain  *simulators.RainModel
	depth *simulators.DepthModel
	j     *gaugeJudge
	dev   string
}

// step reports at now and feeds the judge the true value.
func (g *nightGauge) step(now time.Time, out []telemetry.Record) []telemetry.Record {
	n := len(out)
	var truth float64
	if g.rain != nil {
		out = g.rain.Step(now, out)
		truth = g.rain.TrueMM()
	} else {
		out = g.depth.Step(now, out)
		truth = g.depth.DepthCM()
	}
	for k := n; k < len(out); k++ {
		r := &out[k]
		r.Device, r.Received = g.dev, now.UTC()
		r.TS = r.TS.UTC()
		if r.Kind == telemetry.KindRain {
			g.j.rain(r.TS.UnixNano(), int64(r.Rain.IntervalS*1e9), truth)
		} else {
			g.j.depth(r.TS.UnixNano(), truth)
		}
	}
	return out
}

// nightTruck is a truck of the night.
type nightTruck struct {
	m      *simulators.TruckModel
	j      *truckJudge
	dev    string
	newest [telemetry.KindSensors + 1]time.Time // per kind, for Late
	recs   []telemetry.Record
	// hist holds the true position at the last steps (by step count mod
	// its length), for the complete-data judge of back-filled fixes.
	hist  [histLen]stepPos
	steps int
	order []int
}

// histLen covers the longest signal gap (120 s) at a 1 s fix interval.
const histLen = 256

type stepPos struct {
	ts int64
	p  xy
}

// posAt returns the true position at the step at ts.
func (t *nightTruck) posAt(ts int64) (xy, bool) {
	for k := 1; k <= min(t.steps, histLen); k++ {
		h := t.hist[(t.steps-k)%histLen]
		if h.ts == ts {
			return h.p, true
		}
		if h.ts < ts {
			break
		}
	}
	return xy{}, false
}

// step advances the truck to now, appends what it sends to out and feeds
// the judge.
func (t *nightTruck) step(now time.Time, pl plane, out []telemetry.Record) []telemetry.Record {
	ns := now.UnixNano()
	t.j.tick(ns)
	t.j.shadow.tick(ns)
	t.recs = t.m.Step(now, t.recs[:0])
	tr := t.m.Truth()
	pos := pl.project(orb.Point{tr.Lon, tr.Lat})
	t.hist[t.steps%histLen] = stepPos{ns, pos}
	t.steps++
	if len(t.recs) == 0 {
		return out
	}
	t.complete(ns, pos)
	for k := range t.recs {
		r := &t.recs[k]
		r.Device, r.Received = t.dev, now.UTC()
		r.TS = r.TS.UTC()
		n := &t.newest[r.Kind]
		r.Late = !n.IsZero() && r.TS.Before(*n)
		if r.TS.After(*n) {
			*n = r.TS
		}
		if !r.Late {
			switch r.Kind {
			case telemetry.KindGPS:
				if r.TS.Equal(now) {
					t.j.fix(r.TS.UnixNano(), &r.Fix, pos)
				}
			case telemetry.KindSensors:
				t.j.sensors(r.TS.UnixNano(), r.Sensors)
			}
		}
		out = append(out, *r)
	}
	return out
}

// complete feeds the step's records to the complete-data judge in
// event-time order, each fix with the true position at its time.
func (t *nightTruck) complete(now int64, pos xy) {
	t.order = t.order[:0]
	for k := range t.recs {
		t.order = append(t.order, k)
	}
	if len(t.recs) > 2 {
		slices.SortStableFunc(t.order, func(a, b int) int { return t.recs[a].TS.Compare(t.recs[b].TS) })
	}
	for _, k := range t.order {
		r := &t.recs[k]
		ts := r.TS.UnixNano()
		switch r.Kind {
		case telemetry.KindGPS:
			p, ok := pos, ts == now
			if !ok {
				p, ok = t.posAt(ts)
			}
			if ok {
				t.j.shadow.fix(ts, &r.Fix, p)
			}
		case telemetry.KindSensors:
			t.j.shadow.sensors(ts, r.Sensors)
		}
	}
}

// shards step the trucks in parallel, each shard a contiguous run of them
// on its own goroutine, so that the output order does not depend on the
// scheduling.
type shards struct {
	shards []*shard
	wg     sync.WaitGroup
}

type shard struct {
	trucks []*nightTruck
	out    []telemetry.Record
	work   chan time.Time
}

func newShards(trucks []*nightTruck, pl plane) *shards {
	n := min(runtime.GOMAXPROCS(0), 8, max(1, len(trucks)/50))
	s := &shards{}
	for k := range n {
		sh := &shard{trucks: trucks[k*len(trucks)/n : (k+1)*len(trucks)/n], work: make(chan time.Time)}
		s.shards = append(s.shards, sh)
		go func() {
			for now := range sh.work {
				sh.out = sh.out[:0]
				for _, t := range sh.trucks {
					sh.out = t.step(now, pl, sh.out)
				}
				s.wg.Done()
			}
		}()
	}
	return s
}

// step steps every truck to now and waits for them.
func (s *shards) step(now time.Time) {
	s.wg.Add(len(s.shards))
	for _, sh := range s.shards {
		sh.work <- now
	}
	s.wg.Wait()
}

func (s *shards) close() {
	for _, sh := range s.shards {
		close(sh.work)
	}
}
