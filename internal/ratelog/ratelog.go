// Package ratelog limits how often a recurring event is logged and counts the
// occurrences it holds back, so that a flood — thousands of bad messages, a
// fleet failing to connect, InfluxDB down — makes one log line per period
// that says how many it stands for.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one occurrence through per Every. The zero value lets every
// occurrence through. It is safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// Allow reports whether the occurrence at now should be logged and, if so,
// how many were held back since the last one that was.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.Every)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Reset forgets the last occurrence, so the next one is logged.
func (l *Limiter) Reset() {
	l.mu.Lock()
	l.next, l.suppressed = time.Time{}, 0
	l.mu.Unlock()
}
