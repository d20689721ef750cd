package simulators

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/internal/ratelog"
)

// pacer spaces events evenly at a rate per second, across goroutines.
type pacer struct {
	mu    sync.Mutex
	next  time.Time
	every time.Duration
}

func newPacer(perSecond int) *pacer {
	return &pacer{every: time.Second / time.Duration(perSecond)}
}

// wait blocks until the caller's slot comes or ctx is done.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = at.Add(p.every)
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logLimiter lets through at most one line per period and counts the rest,
// so that 20,000 devices failing to connect make one line a second.
type logLimiter struct {
	log   zerolog.Logger
	limit ratelog.Limiter
}

// warn logs msg with the device and error, unless a line was logged less
// than a period ago; the next line that gets through reports how many were
// suppressed.
func (l *logLimiter) warn(msg, device string, err error) {
	if ok, n := l.limit.Allow(time.Now()); ok {
		l.log.Warn().Err(err).Str("device", device).Int("suppressed", n).Msg(msg)
	}
}
