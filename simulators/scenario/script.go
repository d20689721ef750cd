package scenario

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The hand-made scenarios play in a small town west of Weifang's centre: a
// straight road 4 km long (y = 0 on the local plane, x east), a
// construction site CS1 150 m north of its west end and a disposal site DS1
// 150 m south of its east end, each fenced by a 16-gon of radius 120 m
// (trucks park within 10 m of the centre). The permitted route R-CS1-DS1
// runs centre to centre along the road; R-DS1-CS1 is its reverse.
var (
	town      = newPlane(119.12, 36.70)
	csCentre  = xy{0, 150}
	dsCentre  = xy{4000, -150}
	gateWest  = xy{0, 0}
	gateEast  = xy{4000, 0}
	townRoute = polyline{csCentre, gateWest, gateEast, dsCentre}
)

const fenceR = 120

// shanghai is the city's time zone.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(fmt.Sprintf("scenario: %v", err)) // tzdata is linked in by package config
	}
	return loc
}()

// at is a local time in Weifang on July 2026 day d.
func at(d, h, m int) time.Time { return time.Date(2026, 7, d, h, m, 0, 0, shanghai) }

// truckSpec is a truck of a town city and its permit.
type truckSpec struct {
	dev, plate string
	windows    []config.Window
	from, to   config.Date
	rated      float64 // kg
}

// townRated is a town truck's rated load unless a scenario sets another:
// well above what the scripts load (at most 18 t), so overload stays
// silent.
const townRated = 25000

func spec(dev, plate string, windows ...config.Window) truckSpec {
	return truckSpec{dev: dev, plate: plate, windows: windows, rated: townRated,
		from: config.Date{Year: 2026, Month: 1, Day: 1}, to: config.Date{Year: 2026, Month: 12, Day: 31}}
}

// ratedAt returns s with rated load kg.
func (s truckSpec) ratedAt(kg float64) truckSpec {
	s.rated = kg
	return s
}

// townOpt changes a town city as a scenario needs.
type townOpt func(c *config.City)

// washBox is CS1's wash area: x in [-20, 20], y in [60, 100], across the
// way from its centre to the road, 50 m from where trucks park.
var washBox = [4]float64{-20, 60, 20, 100}

// withWash gives CS1 its wash area (washBox).
func withWash(c *config.City) {
	c.Sites[0].WashArea = townBox(washBox[0], washBox[1], washBox[2], washBox[3]).Area
}

// Daily windows used by the scenarios.
var (
	night   = config.Window{Start: 20 * 3600, End: 6 * 3600}
	daytime = config.Window{Start: 6 * 3600, End: 20 * 3600}
)

// townCity builds the town's city with the trucks, gauges and zones given,
// then applies opts.
func townCity(trucks []truckSpec, gauges []config.Gauge, zones []config.Zone, opts ...townOpt) *config.City {
	c := &config.City{Name: "潍坊市", RegionCode: "370700", TimeZone: "Asia/Shanghai", CRS: "wgs84",
		Companies: []config.Company{{ID: "C1", Name: "潍坊测试运输有限公司",
			Contacts: []config.Contact{{Name: "测试", Phone: "+8619900009999", Role: "合规经理"}}}},
		Zones: zones, Gauges: gauges}
	for i, t := range trucks {
		c.Trucks = append(c.Trucks, config.Truck{Plate: t.plate, Company: "C1", Devices: []string{t.dev}, RatedLoadKg: t.rated})
		c.Permits = append(c.Permits, config.Permit{ID: fmt.Sprintf("ZY-T%d", i+1), Truck: t.plate,
			ValidFrom: t.from, ValidTo: t.to, Windows: t.windows,
			Origins: []string{"CS1"}, Disposal: []string{"DS1"}, Routes: []string{"R-CS1-DS1", "R-DS1-CS1"}})
	}
	c.Sites = []config.Site{
		{ID: "CS1", Name: "测试工地", Kind: config.SiteConstruction, Area: orb.MultiPolygon{townFence(csCentre)}},
		{ID: "DS1", Name: "测试消纳场", Kind: config.SiteDisposal, Area: orb.MultiPolygon{townFence(dsCentre)}},
	}
	back := slices.Clone(townRoute)
	slices.Reverse(back)
	c.Routes = []config.Route{
		{ID: "R-CS1-DS1", Name: "测试工地→测试消纳场", Path: townLine(townRoute)},
		{ID: "R-DS1-CS1", Name: "测试消纳场→测试工地", Path: townLine(back)},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func townFence(c xy) orb.Polygon {
	var ring orb.Ring
	for k := range 16 {
		a := 2 * math.Pi * float64(k) / 16
		ring = append(ring, town.point(c.add(xy{fenceR * math.Cos(a), fenceR * math.Sin(a)})))
	}
	return orb.Polygon{append(ring, ring[0])}
}

func townLine(l polyline) orb.LineString {
	ls := make(orb.LineString, len(l))
	for i, p := range l {
		ls[i] = town.point(p)
	}
	return ls
}

// townBox is a zone area: x in [x0, x1], y in [y0, y1] on the town plane.
func townBox(x0, y0, x1, y1 float64) config.GeoJSONGeometry {
	r := orb.Ring{town.point(xy{x0, y0}), town.point(xy{x1, y0}), town.point(xy{x1, y1}), town.point(xy{x0, y1})}
	return config.GeoJSONGeometry{Area: orb.MultiPolygon{{append(r, r[0])}}}
}

// inFence reports whether p is inside the fence of the site centred at c
// (as the judge and the engine see it: the 16-gon).
func inFence(c, p xy) bool {
	return newArea(town, orb.MultiPolygon{townFence(c)}).signed(p, 50) > 0
}

// built is a scenario with what its records' devices really did: the true
// position of every truck fix and the true value of every gauge report, by
// device and event time (Unix ns), for checking the ground truth with the
// judge.
type built struct {
	Scenario
	pos   map[string]map[int64]orb.Point
	truth map[string]map[int64]float64
}

// recorder collects the records of a scenario's devices.
type recorder struct {
	devs []*device
}

// device is one device's records, in its own arrival order.
type device struct {
	id    string
	recs  []telemetry.Record
	seq   [telemetry.KindDepth + 1]uint64
	pos   map[int64]orb.Point
	truth map[int64]float64
}

func (rc *recorder) device(id string) *device {
	d := &device{id: id, pos: map[int64]orb.Point{}, truth: map[int64]float64{}}
	rc.devs = append(rc.devs, d)
	return d
}

// make returns a record of kind k made by d at ts (the next seq).
func (d *device) make(k telemetry.Kind, ts time.Time) telemetry.Record {
	r := telemetry.Record{Kind: k, Header: telemetry.Header{Device: d.id, Seq: d.seq[k], TS: ts.UTC(), Received: ts.UTC()}}
	d.seq[k]++
	return r
}

// finish merges the devices' records in arrival order (by Received; a tie
// keeps device order, then each device's order), sets Late and builds the
// scenario from start to the last event time.
func (rc *recorder) finish(name, note string, c *config.City, start time.Time, expect []Expect) built {
	type item struct {
		r      telemetry.Record
		dev, k int
	}
	var all []item
	b := built{pos: map[string]map[int64]orb.Point{}, truth: map[string]map[int64]float64{}}
	for di, d := range rc.devs {
		for k, r := range d.recs {
			all = append(all, item{r, di, k})
		}
		b.pos[d.id], b.truth[d.id] = d.pos, d.truth
	}
	slices.SortStableFunc(all, func(a, b item) int {
		if c := a.r.Received.Compare(b.r.Received); c != 0 {
			return c
		}
		if c := cmp.Compare(a.dev, b.dev); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
	recs := make([]telemetry.Record, len(all))
	end := start
	for i, it := range all {
		recs[i] = it.r
		if it.r.TS.After(end) {
			end = it.r.TS
		}
	}
	setLate(recs)
	sortExpect(expect)
	b.Scenario = Scenario{Name: name, City: c, Records: recs, Expect: expect, Note: note,
		Start: start.UTC(), Duration: end.Sub(start)}
	return b
}

// setLate sets Late on every record older than one delivered before it
// for the same device and kind.
func setLate(recs []telemetry.Record) {
	type key struct {
		dev  string
		kind telemetry.Kind
	}
	newest := map[key]time.Time{}
	for i := range recs {
		r := &recs[i]
		k := key{r.Device, r.Kind}
		n, ok := newest[k]
		r.Late = ok && r.TS.Before(n)
		if !ok || r.TS.After(n) {
			newest[k] = r.TS
		}
	}
}

// tick is where a scripted truck was at one fix, and how fast it went.
type tick struct {
	t   time.Time
	p   xy
	kmh float64
}

// driver scripts one truck: its true path and speed, its sensors, and what
// its terminal sends. Every second it moves it sends a fix (9 satellites,
// valid) with GPS noise; a sensors message goes with the first fix, every
// 5th fix and at once whenever the script changes a sensor. While
// buffering (a tunnel) messages are kept and delivered, shuffled, right
// after the first fix once the buffering stops; while silent nothing is
// made.
type driver struct {
	d       *device
	t       time.Time
	p, dir  xy
	kmh     float64
	st      telemetry.SensorState
	sent    telemetry.SensorState
	hasSent bool
	fixes   int
	rng     *rand.Rand
	nx, ny  float64
	sigma   float64
	// noise, if set, replaces the AR(1) GPS noise.
	noise func() xy

	buffering, silent bool
	buf               []telemetry.Record
	flush             bool
	log               []tick
}

// newDriver starts a truck parked at p at t0, cover closed, body down,
// empty.
func newDriver(d *device, t0 time.Time, p xy, hasLoad bool, seed uint64) *driver {
	return &driver{d: d, t: t0, p: p, dir: xy{1, 0}, rng: rand.New(rand.NewPCG(seed, 0x736372)), sigma: 3,
		st: telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, HasLoad: hasLoad}}
}

// out delivers or buffers a record.
func (dr *driver) out(r telemetry.Record) {
	if dr.buffering {
		dr.buf = append(dr.buf, r)
		return
	}
	dr.d.recs = append(dr.d.recs, r)
}

// emit makes the fix at the current time, and the sensors message if one
// is due.
func (dr *driver) emit() {
	if dr.silent {
		return
	}
	dr.log = append(dr.log, tick{dr.t, dr.p, dr.kmh})
	var n xy
	if dr.noise != nil {
		n = dr.noise()
	} else {
		const rho = 0.8
		k := dr.sigma * math.Sqrt(1-rho*rho)
		dr.nx = rho*dr.nx + k*dr.rng.NormFloat64()
		dr.ny = rho*dr.ny + k*dr.rng.NormFloat64()
		n = xy{dr.nx, dr.ny}
	}
	pt := town.point(dr.p.add(n))
	r := dr.d.make(telemetry.KindGPS, dr.t)
	hdg := math.Mod(math.Atan2(dr.dir.X, dr.dir.Y)*180/math.Pi+360, 360)
	r.Fix = telemetry.Fix{Lat: pt[1], Lon: pt[0], SpeedKmh: dr.kmh, Heading: hdg, Sats: 9, Valid: true}
	dr.d.pos[r.TS.UnixNano()] = town.point(dr.p)
	dr.out(r)
	dr.fixes++
	if dr.flush && !dr.buffering {
		dr.flush = false
		dr.rng.Shuffle(len(dr.buf), func(i, j int) { dr.buf[i], dr.buf[j] = dr.buf[j], dr.buf[i] })
		for _, b := range dr.buf {
			b.Received = dr.t.UTC()
			dr.d.recs = append(dr.d.recs, b)
		}
		dr.buf = nil
	}
	if !dr.hasSent || dr.st != dr.sent || (dr.fixes-1)%5 == 0 {
		dr.sensors()
	}
}

// sensors sends the sensor state now.
func (dr *driver) sensors() {
	if dr.silent {
		return
	}
	r := dr.d.make(telemetry.KindSensors, dr.t)
	r.Sensors = dr.st
	dr.out(r)
	dr.sent, dr.hasSent = dr.st, true
}

// start sends the first fix, where the truck is parked.
func (dr *driver) start() *driver {
	dr.emit()
	return dr
}

// set changes the sensors and sends them at once.
func (dr *driver) set(f func(s *telemetry.SensorState)) {
	f(&dr.st)
	if dr.hasSent && dr.st != dr.sent {
		dr.sensors()
	}
}

func (dr *driver) cover(c telemetry.Cover) { dr.set(func(s *telemetry.SensorState) { s.Cover = c }) }
func (dr *driver) body(b telemetry.Body)   { dr.set(func(s *telemetry.SensorState) { s.Body = b }) }
func (dr *driver) load(kg float64) {
	dr.set(func(s *telemetry.SensorState) {
		if s.HasLoad {
			s.LoadKg = kg
		}
	})
}

// wait stands still for n seconds, a fix a second.
func (dr *driver) wait(n int) {
	dr.kmh = 0
	for range n {
		dr.t = dr.t.Add(time.Second)
		dr.emit()
	}
}

// drive goes through the points at kmh, a fix a second; the last second
// may be short.
func (dr *driver) drive(kmh float64, pts ...xy) {
	v := kmh / 3.6
	for _, to := range pts {
		for dist(dr.p, to) > 1e-9 {
			d := to.sub(dr.p)
			l := math.Hypot(d.X, d.Y)
			dr.dir = d.scale(1 / l)
			if l <= v {
				dr.p = to
			} else {
				dr.p = dr.p.add(dr.dir.scale(v))
			}
			dr.kmh = kmh
			dr.t = dr.t.Add(time.Second)
			dr.emit()
		}
	}
}

// loadUp loads the truck parked at CS1: the cover opens after 10 s, the
// load rises to kg over 100 s, then the cover closes (unless keepOpen) and
// the truck waits 20 s.
func (dr *driver) loadUp(kg float64, keepOpen bool) {
	dr.wait(10)
	dr.cover(telemetry.CoverOpen)
	for k := 1; k <= 10; k++ {
		dr.wait(10)
		dr.load(kg * float64(k) / 10)
	}
	if !keepOpen {
		dr.cover(telemetry.CoverClosed)
	}
	dr.wait(20)
}

// report returns the time of the first sensors message sent at or after
// from.
func (dr *driver) report(from time.Time) time.Time {
	for _, r := range dr.d.recs {
		if r.Kind == telemetry.KindSensors && !r.TS.Before(from) {
			return r.TS
		}
	}
	panic(fmt.Sprintf("scenario %s: no sensors message after %s", dr.d.id, from))
}

// first returns the time of the first fix at or after from whose tick
// satisfies ok.
func (dr *driver) first(from time.Time, ok func(tick) bool) time.Time {
	for _, tk := range dr.log {
		if !tk.t.Before(from) && ok(tk) {
			return tk.t
		}
	}
	panic(fmt.Sprintf("scenario %s: no such fix after %s", dr.d.id, from))
}

// gauge scripts a gauge's reports.
type gauge struct{ d *device }

// rain reports mm over the interval s before ts.
func (g gauge) rain(ts time.Time, intervalS, mm float64) {
	r := g.d.make(telemetry.KindRain, ts)
	r.Rain = telemetry.RainReading{MM: mm, IntervalS: intervalS}
	g.d.truth[r.TS.UnixNano()] = mm
	g.d.recs = append(g.d.recs, r)
}

// depth reports cm at ts.
func (g gauge) depth(ts time.Time, cm float64) {
	r := g.d.make(telemetry.KindDepth, ts)
	r.Depth = telemetry.DepthReading{DepthCM: cm}
	g.d.truth[r.TS.UnixNano()] = cm
	g.d.recs = append(g.d.recs, r)
}

// townGauge is a gauge of the town at the road's middle.
func townGauge(dev string, kind config.GaugeKind, name string) config.Gauge {
	p := town.point(xy{2000, 300})
	return config.Gauge{Device: dev, Name: name, Kind: kind, Lat: p[1], Lon: p[0]}
}
