package config

import (
	"context"
	"crypto/sha256"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CityWatcher notices when a city's files change: the city file and the
// GeoJSON files it names. Every interval it stats them, and when a size or
// modification time moved, hashes the content to confirm (a touch or a
// rewrite with the same bytes is not a change). A file that cannot be
// read is skipped until it can (an editor replacing it, or a deletion the
// reload would only refuse). Its methods are safe for concurrent use.
type CityWatcher struct {
	interval time.Duration
	onChange func()

	mu    sync.Mutex
	files []fileStamp
	polls atomic.Int64 // for tests
}

// NewCityWatcher watches the files c was loaded from, taking their content
// as LoadCity read it as the baseline, and calls onChange from Run each
// time a poll finds one changed. interval ≤ 0 means 2s. A city built in
// code has no files: Run then only waits.
func NewCityWatcher(c *City, interval time.Duration, onChange func()) *CityWatcher {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	w := &CityWatcher{interval: interval, onChange: onChange}
	w.Watch(c)
	return w
}

// Watch replaces the files watched with those c was loaded from, as it
// read them: after a reload, which may name other GeoJSON files.
func (w *CityWatcher) Watch(c *City) {
	w.mu.Lock()
	w.files = slices.Clone(c.files)
	w.mu.Unlock()
}

// Run polls until ctx is done, then returns nil. onChange runs on Run's
// goroutine, at most once per poll.
func (w *CityWatcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed := w.poll()
		w.polls.Add(1)
		if changed {
			w.onChange()
		}
	}
}

// poll stats every file, hashes those whose stamp moved, and reports
// whether any content changed; it takes what it found as the new baseline.
func (w *CityWatcher) poll() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for i := range w.files {
		f := &w.files[i]
		st, err := os.Stat(f.path)
		if err != nil || (st.Size() == f.size && st.ModTime().Equal(f.mod)) {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		f.size, f.mod = st.Size(), st.ModTime()
		if sum != f.sum {
			f.sum = sum
			changed = true
		}
	}
	return changed
}
