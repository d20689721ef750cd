package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The trip log keeps the trips the rules engine finishes (telemetry.Trip,
// handed over by app's trips stage from the alert journal) where the
// compliance report and the evidence packets read them:
// DATA_DIR/console/trips-YYYY-MM-DD.jsonl (the day of departure in the
// city's zone), appended and synced every second, kept 90 days. The trips
// stage may hand over a trip again after a crash; it has the same id and is
// written once.
type tripLog struct {
	dir string
	now func() time.Time
	log zerolog.Logger

	mu    sync.Mutex
	city  *config.City
	seen  map[string]bool     // ids written (recent days)
	files map[string]*os.File // by day
	dirty bool
}

// tripRetention is how long trip files are kept (as alerts are).
const tripRetention = 90 * 24 * time.Hour

func openTripLog(dataDir string, c *config.City, now func() time.Time, log zerolog.Logger) (*tripLog, error) {
	dir := filepath.Join(dataDir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("trip log: %w", err)
	}
	t := &tripLog{dir: dir, now: now, log: log, seen: map[string]bool{}, files: map[string]*os.File{}}
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
}

// add records a finished trip, once per id.
func (t *tripLog) add(tr *telemetry.Trip) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeLocked(tr)
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

// at returns the finished trip plate was on at ts, or nil (none, or one
// still under way).
func (t *tripLog) at(plate string, ts time.Time) (*telemetry.Trip, error) {
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
