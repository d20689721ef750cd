package web

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// offlineAfter is how long without a fix makes a truck "offline" on the map.
const offlineAfter = 10 * time.Minute

// TruckState is how a truck is drawn on the map.
type TruckState string

// The map states, in the order a truck's colour is chosen.
const (
	StateUnknown   TruckState = "unknown" // never seen
	StateOffline   TruckState = "offline" // no fix for offlineAfter
	StateAlerting  TruckState = "alerting"
	StateCoverOpen TruckState = "cover_open" // loaded with the cover open or faulty
	StateLoaded    TruckState = "loaded"
	StateEmpty     TruckState = "empty"
)

// liveTruck is what the map knows of one truck now.
type liveTruck struct {
	plate   string
	company string
	device  string
	fix     telemetry.Fix
	fixTS   time.Time
	sens    telemetry.SensorState
	sensTS  time.Time
	alerts  map[string]struct{} // active alert ids
	state   TruckState
	dirty   bool
}

// liveGauge is the newest of one gauge or depth point.
type liveGauge struct {
	device string
	kind   config.GaugeKind
	rain   []rainReport // the last hour
	depth  float64
	ts     time.Time
	dirty  bool
}

type rainReport struct {
	ts time.Time
	mm float64
}

// fleet is the live state of every truck and gauge of the city, fed by the
// accepted records and the alert changes, read by the console's map and
// stream. Safe for concurrent use.
type fleet struct {
	now func() time.Time

	mu       sync.Mutex
	city     *config.City
	loadedKg float64
	trucks   map[string]*liveTruck // by plate
	byDevice map[string]*liveTruck
	gauges   map[string]*liveGauge
	alertOf  map[string]string // active truck alert id → plate
	changed  bool
}

func newFleet(city *config.City, now func() time.Time) *fleet {
	f := &fleet{now: now, trucks: map[string]*liveTruck{}, byDevice: map[string]*liveTruck{},
		gauges: map[string]*liveGauge{}, alertOf: map[string]string{}}
	f.setCity(city)
	return f
}

// setCity applies a (re)loaded city: trucks and gauges it adds appear,
// those it drops disappear, the others keep what is known of them.
func (f *fleet) setCity(c *config.City) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.city = c
	f.loadedKg = c.Rules.UncoveredLoad.LoadedKg
	trucks := make(map[string]*liveTruck, len(c.Trucks))
	byDevice := map[string]*liveTruck{}
	for _, t := range c.Trucks {
		lt := f.trucks[t.Plate]
		if lt == nil {
			lt = &liveTruck{plate: t.Plate, alerts: map[string]struct{}{}, state: StateUnknown}
		}
		lt.company = t.Company
		if len(t.Devices) > 0 {
			lt.device = t.Devices[0]
		}
		for _, d := range t.Devices {
			byDevice[d] = lt
		}
		trucks[t.Plate] = lt
	}
	f.trucks, f.byDevice = trucks, byDevice
	gauges := make(map[string]*liveGauge, len(c.Gauges))
	for _, g := range c.Gauges {
		lg := f.gauges[g.Device]
		if lg == nil {
			lg = &liveGauge{device: g.Device}
		}
		lg.kind = g.Kind
		gauges[g.Device] = lg
	}
	f.gauges = gauges
}

// observe applies one accepted record. Late (back-filled) records do not
// move a truck back in time.
func (f *fleet) observe(r *telemetry.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Kind {
	case telemetry.KindGPS:
		t := f.byDevice[r.Device]
		if t == nil || !r.Fix.Valid || r.TS.Before(t.fixTS) {
			return
		}
		t.fix, t.fixTS = r.Fix, r.TS
		f.restateLocked(t, true)
	case telemetry.KindSensors:
		t := f.byDevice[r.Device]
		if t == nil || r.TS.Before(t.sensTS) {
			return
		}
		t.sens, t.sensTS = r.Sensors, r.TS
		f.restateLocked(t, false)
	case telemetry.KindRain:
		g := f.gauges[r.Device]
		if g == nil {
			return
		}
		for _, have := range g.rain {
			if have.ts.Equal(r.TS) {
				return // a report replayed after a restart: counted once
			}
		}
		g.rain = append(g.rain, rainReport{r.TS, r.Rain.MM})
		f.trimRainLocked(g)
		if r.TS.After(g.ts) {
			g.ts = r.TS
		}
		g.dirty, f.changed = true, true
	case telemetry.KindDepth:
		g := f.gauges[r.Device]
		if g == nil || r.TS.Before(g.ts) {
			return
		}
		g.depth, g.ts = r.Depth.DepthCM, r.TS
		g.dirty, f.changed = true, true
	}
}

func (f *fleet) trimRainLocked(g *liveGauge) {
	cut := f.now().Add(-time.Hour)
	i := 0
	for i < len(g.rain) && !g.rain[i].ts.After(cut) {
		i++
	}
	g.rain = g.rain[i:]
}

// rainHour is the rain of the last hour at g.
func (g *liveGauge) rainHour() float64 {
	var mm float64
	for _, r := range g.rain {
		mm += r.mm
	}
	return mm
}

// restateLocked recomputes t's state; moved says its position changed,
// which is sent even when the state is the same.
func (f *fleet) restateLocked(t *liveTruck, moved bool) {
	s := f.stateLocked(t)
	if s != t.state || moved {
		t.state, t.dirty, f.changed = s, true, true
	}
}

func (f *fleet) stateLocked(t *liveTruck) TruckState {
	switch {
	case t.fixTS.IsZero():
		if len(t.alerts) > 0 {
			return StateAlerting
		}
		return StateUnknown
	case len(t.alerts) > 0:
		return StateAlerting
	case f.now().Sub(t.fixTS) > offlineAfter:
		return StateOffline
	}
	loaded := t.sens.HasLoad && t.sens.LoadKg >= f.loadedKg
	open := t.sens.Cover == telemetry.CoverOpen || t.sens.Cover == telemetry.CoverFault
	switch {
	case loaded && open:
		return StateCoverOpen
	case loaded:
		return StateLoaded
	}
	return StateEmpty
}

// setAlert records that the truck alert id is active (or not) for plate.
func (f *fleet) setAlert(id, plate string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.alertOf[id]; ok && (old != plate || !active) {
		if t := f.trucks[old]; t != nil {
			delete(t.alerts, id)
			f.restateLocked(t, false)
		}
		delete(f.alertOf, id)
	}
	if !active {
		return
	}
	t := f.trucks[plate]
	if t == nil {
		return
	}
	f.alertOf[id] = plate
	t.alerts[id] = struct{}{}
	f.restateLocked(t, false)
}

// retainAlerts forgets the truck alerts keep says are no longer active
// (missed changes, found by a resync).
func (f *fleet) retainAlerts(keep func(id string) bool) {
	f.mu.Lock()
	ids := make([]string, 0, len(f.alertOf))
	for id := range f.alertOf {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	for _, id := range ids {
		if !keep(id) {
			f.setAlert(id, "", false)
		}
	}
}

// touchGauge marks a gauge changed (its level did), so the next tick
// streams it.
func (f *fleet) touchGauge(device string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.gauges[device]; g != nil {
		g.dirty, f.changed = true, true
	}
}

// tick re-judges time-driven states (offline) and returns the trucks and
// gauges that changed since the last tick, clearing their marks.
func (f *fleet) tick() (trucks []truckView, gauges []gaugeView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.trucks {
		if s := f.stateLocked(t); s != t.state {
			t.state, t.dirty, f.changed = s, true, true
		}
	}
	if !f.changed {
		return nil, nil
	}
	f.changed = false
	for _, t := range f.trucks {
		if t.dirty {
			t.dirty = false
			trucks = append(trucks, f.viewLocked(t))
		}
	}
	for _, g := range f.gauges {
		if g.dirty {
			g.dirty = false
			f.trimRainLocked(g)
			gauges = append(gauges, gaugeView{Device: g.device, Kind: g.kind, Value: g.value(), TS: g.ts})
		}
	}
	return trucks, gauges
}

func (g *liveGauge) value() float64 {
	if g.kind == config.GaugeDepth {
		return g.depth
	}
	return g.rainHour()
}

// truckView is one truck as the console shows it.
type truckView struct {
	Plate       string     `json:"plate"`
	Company     string     `json:"company"`
	CompanyName string     `json:"company_name,omitempty"`
	Device      string     `json:"device"`
	Lat         *float64   `json:"lat,omitempty"`
	Lon         *float64   `json:"lon,omitempty"`
	SpeedKmh    float64    `json:"speed_kmh"`
	Heading     float64    `json:"heading"`
	TS          *time.Time `json:"ts,omitempty"`
	State       TruckState `json:"state"`
	Cover       string     `json:"cover"`
	Body        string     `json:"body"`
	LoadKg      *float64   `json:"load_kg,omitempty"`
	HasLoad     bool       `json:"has_load"`
	SensorsTS   *time.Time `json:"sensors_ts,omitempty"`
	Alerts      int        `json:"alerts"`
}

func (f *fleet) viewLocked(t *liveTruck) truckView {
	v := truckView{Plate: t.plate, Company: t.company, Device: t.device, State: t.state,
		Cover: t.sens.Cover.String(), Body: t.sens.Body.String(), HasLoad: t.sens.HasLoad, Alerts: len(t.alerts)}
	if c := f.city.Company(t.company); c != nil {
		v.CompanyName = c.Name
	}
	if !t.fixTS.IsZero() {
		lat, lon, ts := t.fix.Lat, t.fix.Lon, t.fixTS
		v.Lat, v.Lon, v.TS = &lat, &lon, &ts
		v.SpeedKmh, v.Heading = t.fix.SpeedKmh, t.fix.Heading
	}
	if t.sens.HasLoad {
		kg := t.sens.LoadKg
		v.LoadKg = &kg
	}
	if !t.sensTS.IsZero() {
		ts := t.sensTS
		v.SensorsTS = &ts
	}
	return v
}

// trucksOf returns the trucks a user may see (company "" for all), sorted
// by plate.
func (f *fleet) trucksOf(company string) []truckView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]truckView, 0, len(f.trucks))
	for _, t := range f.trucks {
		if company == "" || t.company == company {
			out = append(out, f.viewLocked(t))
		}
	}
	sortViews(out)
	return out
}

// truck returns one truck's view, or false.
func (f *fleet) truck(plate string) (truckView, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.trucks[config.NormalizePlate(plate)]
	if t == nil {
		return truckView{}, false
	}
	return f.viewLocked(t), true
}

// gaugeNow returns the live value of a gauge (rain in the last hour, or
// depth) and the time of its newest report.
func (f *fleet) gaugeNow(device string) (float64, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gauges[device]
	if g == nil || g.ts.IsZero() {
		return 0, time.Time{}, false
	}
	f.trimRainLocked(g)
	return g.value(), g.ts, true
}

// gaugeView is one gauge's change in the stream.
type gaugeView struct {
	Device string
	Kind   config.GaugeKind
	Value  float64
	TS     time.Time
}

func sortViews(v []truckView) {
	// Sorted by plate, so the list stays put for the UI.
	slices.SortFunc(v, func(a, b truckView) int { return strings.Compare(a.Plate, b.Plate) })
}

// compact is a truck's entry in the stream's trucks event:
// [plate, lat, lon, heading, speed_kmh, state, ts_unix].
func compact(v truckView, b []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendQuote(b, v.Plate)
	b = append(b, ',')
	if v.Lat != nil {
		b = strconv.AppendFloat(b, *v.Lat, 'f', 6, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, *v.Lon, 'f', 6, 64)
	} else {
		b = append(b, "null,null"...)
	}
	b = append(b, ',')
	b = strconv.AppendFloat(b, v.Heading, 'f', 0, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, v.SpeedKmh, 'f', 1, 64)
	b = append(b, ",\""...)
	b = append(b, v.State...)
	b = append(b, "\","...)
	if v.TS != nil {
		b = strconv.AppendInt(b, v.TS.Unix(), 10)
	} else {
		b = append(b, '0')
	}
	return append(b, ']')
}
