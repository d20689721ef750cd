package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The trip log records every loaded journey of every truck (telemetry.Trip)
// as the records arrive, so the compliance report can count trips and
// violations per 100 trips, and an evidence packet can cite its trip.
//
// A truck with a load sensor is loaded while load_kg ≥ the uncovered_load
// rule's loaded_kg; one without is loaded from leaving a construction site
// until it tips (body raised) or leaves a disposal site. A trip departs
// when the loaded truck is first outside its origin site and arrives when
// it is unloaded; a load put on and taken off inside one site is no trip.
//
// Finished trips are appended to DATA_DIR/console/trips-YYYY-MM-DD.jsonl
// (the day of departure in the city's zone) and synced every second. A
// replay after a restart finishes the same trips again: they have the same
// id ("{plate}/{departure unix}") and are written once. A trip still open
// when the process stops is lost (it lives in memory); issue #11 moves
// trips into the rules engine's snapshot.
type tripLog struct {
	dir string
	now func() time.Time
	log zerolog.Logger

	mu       sync.Mutex
	city     *config.City
	bounds   []orb.Bound // of city.Sites, for a quick reject
	loadedKg float64
	trucks   map[string]*tripTruck // by plate
	seen     map[string]bool       // ids written (recent days)
	files    map[string]*os.File   // by day
	dirty    bool
}

// tripTruck is one truck's progress.
type tripTruck struct {
	lastTS   time.Time
	pos      orb.Point
	hasPos   bool
	site     int // index into city.Sites, -1 outside
	loaded   bool
	hasLoad  bool // reports load_kg
	body     telemetry.Body
	trip     *telemetry.Trip // open; DepartedAt zero until it leaves its origin
	loadedAt time.Time
}

// tripRetention is how long trip files are kept (as alerts are).
const tripRetention = 90 * 24 * time.Hour

func openTripLog(dataDir string, c *config.City, now func() time.Time, log zerolog.Logger) (*tripLog, error) {
	dir := filepath.Join(dataDir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("trip log: %w", err)
	}
	t := &tripLog{dir: dir, now: now, log: log, trucks: map[string]*tripTruck{}, seen: map[string]bool{}, files: map[string]*os.File{}}
	t.setCity(c)
	// Ids of the last days' trips: a replay must not write them again.
	day := now().In(c.Location)
	for i := 0; i < 3; i++ {
		trips, err := t.readDay(day.AddDate(0, 0, -i).Format(time.DateOnly))
		if err != nil {
			return nil, err
		}
		for _, tr := range trips {
			t.seen[tr.ID] = true
		}
	}
	return t, nil
}

func (t *tripLog) setCity(c *config.City) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.city = c
	t.bounds = make([]orb.Bound, len(c.Sites))
	for i := range c.Sites {
		t.bounds[i] = c.Sites[i].Area.Bound()
	}
	t.loadedKg = c.Rules.UncoveredLoad.LoadedKg
	for _, tt := range t.trucks {
		tt.site = -2 // re-judge against the new sites at the next fix
	}
}

// siteAt returns the index of the site containing p, or -1.
func (t *tripLog) siteAt(p orb.Point) int {
	for i, b := range t.bounds {
		if b.Contains(p) && planar.MultiPolygonContains(t.city.Sites[i].Area, p) {
			return i
		}
	}
	return -1
}

// observe applies a fix or a sensor report of a truck.
func (t *tripLog) observe(r *telemetry.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	truck := t.city.TruckOf(r.Device)
	if truck == nil {
		return
	}
	tt := t.trucks[truck.Plate]
	if tt == nil {
		tt = &tripTruck{site: -2}
		t.trucks[truck.Plate] = tt
	}
	if r.TS.Before(tt.lastTS) {
		return // late: history has moved on
	}
	tt.lastTS = r.TS
	switch r.Kind {
	case telemetry.KindGPS:
		if !r.Fix.Valid || r.Fix.Sats < t.city.Rules.MinSats {
			return
		}
		p := orb.Point{r.Fix.Lon, r.Fix.Lat}
		prevSite := tt.site
		site := t.siteAt(p)
		if tt.trip != nil && tt.hasPos && !tt.trip.DepartedAt.IsZero() {
			if d := geo.Distance(tt.pos, p); d < 5000 { // a longer jump is a glitch or a gap
				tt.trip.DistanceM += d
			}
		}
		tt.pos, tt.hasPos, tt.site = p, true, site
		if !tt.hasLoad && prevSite >= 0 && site != prevSite {
			switch t.city.Sites[prevSite].Kind {
			case config.SiteConstruction:
				if !tt.loaded {
					t.setLoaded(truck, tt, true, r.TS, prevSite)
				}
			case config.SiteDisposal:
				if tt.loaded {
					t.setLoaded(truck, tt, false, r.TS, prevSite)
				}
			}
		}
		if tt.trip != nil && tt.trip.DepartedAt.IsZero() && site == -1 {
			tt.trip.DepartedAt = r.TS
			tt.trip.ID = truck.Plate + "/" + fmt.Sprint(r.TS.Unix())
		}
	case telemetry.KindSensors:
		tt.hasLoad = r.Sensors.HasLoad
		if tt.hasLoad {
			loaded := r.Sensors.LoadKg >= t.loadedKg
			if loaded != tt.loaded {
				t.setLoaded(truck, tt, loaded, r.TS, tt.site)
			}
		} else if r.Sensors.Body == telemetry.BodyRaised && tt.body != telemetry.BodyRaised && tt.loaded {
			t.setLoaded(truck, tt, false, r.TS, tt.site)
		}
		tt.body = r.Sensors.Body
	}
}

// setLoaded opens or closes tt's trip at ts; site is where it happened.
func (t *tripLog) setLoaded(truck *config.Truck, tt *tripTruck, loaded bool, ts time.Time, site int) {
	tt.loaded = loaded
	if loaded {
		tr := &telemetry.Trip{Plate: truck.Plate, Company: truck.Company}
		if len(truck.Devices) > 0 {
			tr.Device = truck.Devices[0]
		}
		if site >= 0 && t.city.Sites[site].Kind == config.SiteConstruction {
			tr.Origin = t.city.Sites[site].ID
		}
		if p := t.permitAt(truck.Plate, ts); p != nil {
			tr.Permit = p.ID
		}
		if site < 0 { // loaded outside every site: it departs here
			tr.DepartedAt = ts
			tr.ID = truck.Plate + "/" + fmt.Sprint(ts.Unix())
		}
		tt.trip, tt.loadedAt = tr, ts
		return
	}
	tr := tt.trip
	tt.trip = nil
	if tr == nil || tr.DepartedAt.IsZero() {
		return // loaded and unloaded without leaving the site
	}
	tr.ArrivedAt = ts
	tr.DurationS = math.Round(ts.Sub(tr.DepartedAt).Seconds())
	tr.DistanceM = math.Round(tr.DistanceM)
	if site >= 0 && t.city.Sites[site].Kind == config.SiteDisposal {
		tr.Disposal = t.city.Sites[site].ID
	}
	t.writeLocked(tr)
}

func (t *tripLog) permitAt(plate string, ts time.Time) *config.Permit {
	for _, p := range t.city.PermitsOf(plate) {
		if permitValid(p, ts, t.city.Location) {
			return p
		}
	}
	return nil
}

func (t *tripLog) writeLocked(tr *telemetry.Trip) {
	if t.seen[tr.ID] {
		return
	}
	day := tr.DepartedAt.In(t.city.Location).Format(time.DateOnly)
	f := t.files[day]
	if f == nil {
		var err error
		f, err = os.OpenFile(filepath.Join(t.dir, "trips-"+day+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.log.Error().Err(err).Msg("trip log: open")
			return
		}
		t.files[day] = f
	}
	b, err := json.Marshal(tr)
	if err != nil {
		return
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.log.Error().Err(err).Str("trip", tr.ID).Msg("trip log: write")
		return
	}
	t.seen[tr.ID], t.dirty = true, true
}

// run syncs the open files every second, closes those of past days and
// removes files past the retention, until ctx ends.
func (t *tripLog) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	purged := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.sync()
		if now := t.now(); now.Sub(purged) > time.Hour {
			purged = now
			t.purge(now)
		}
	}
}

func (t *tripLog) sync() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dirty {
		return
	}
	t.dirty = false
	today := t.now().In(t.city.Location)
	keep := map[string]bool{}
	for i := 0; i < 2; i++ {
		keep[today.AddDate(0, 0, -i).Format(time.DateOnly)] = true
	}
	for day, f := range t.files {
		if err := f.Sync(); err != nil {
			t.log.Error().Err(err).Msg("trip log: sync")
		}
		if !keep[day] {
			f.Close()
			delete(t.files, day)
		}
	}
}

func (t *tripLog) purge(now time.Time) {
	names, _ := filepath.Glob(filepath.Join(t.dir, "trips-*.jsonl"))
	cut := now.Add(-tripRetention).In(t.city.Location).Format(time.DateOnly)
	for _, n := range names {
		day := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(n), "trips-"), ".jsonl")
		if day < cut {
			os.Remove(n)
		}
	}
}

func (t *tripLog) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for day, f := range t.files {
		errs = append(errs, f.Sync(), f.Close())
		delete(t.files, day)
	}
	return errors.Join(errs...)
}

// readDay returns the trips that departed on day (YYYY-MM-DD). A line
// that does not decode (a torn write at a crash) is skipped.
func (t *tripLog) readDay(day string) ([]telemetry.Trip, error) {
	f, err := os.Open(filepath.Join(t.dir, "trips-"+day+".jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trip log: %w", err)
	}
	defer f.Close()
	var out []telemetry.Trip
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var tr telemetry.Trip
		if json.Unmarshal(sc.Bytes(), &tr) != nil || tr.ID == "" || seen[tr.ID] {
			continue
		}
		seen[tr.ID] = true
		out = append(out, tr)
	}
	return out, sc.Err()
}

// between returns the finished trips that departed in [from, to), of
// company ("" all), ordered by departure; open trips are not included.
func (t *tripLog) between(from, to time.Time, company string) ([]telemetry.Trip, error) {
	t.mu.Lock()
	loc := t.city.Location
	t.mu.Unlock()
	var out []telemetry.Trip
	for d := from.In(loc); d.Before(to.In(loc).AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		trips, err := t.readDay(d.Format(time.DateOnly))
		if err != nil {
			return nil, err
		}
		for _, tr := range trips {
			if !tr.DepartedAt.Before(from) && tr.DepartedAt.Before(to) && (company == "" || tr.Company == company) {
				out = append(out, tr)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DepartedAt.Before(out[j].DepartedAt) })
	return out, nil
}

// at returns the trip plate was on at ts: a finished one, or the open one
// (ArrivedAt zero); nil when it was on none.
func (t *tripLog) at(plate string, ts time.Time) (*telemetry.Trip, error) {
	t.mu.Lock()
	if tt := t.trucks[plate]; tt != nil && tt.trip != nil && !tt.trip.DepartedAt.IsZero() && !ts.Before(tt.trip.DepartedAt.Add(-time.Minute)) {
		tr := *tt.trip
		t.mu.Unlock()
		return &tr, nil
	}
	t.mu.Unlock()
	trips, err := t.between(ts.Add(-24*time.Hour), ts.Add(time.Minute), "")
	if err != nil {
		return nil, err
	}
	for i := len(trips) - 1; i >= 0; i-- {
		tr := trips[i]
		if tr.Plate == plate && !ts.Before(tr.DepartedAt.Add(-time.Minute)) && !ts.After(tr.ArrivedAt.Add(time.Minute)) {
			return &tr, nil
		}
	}
	return nil, nil
}
