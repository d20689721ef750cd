package alerting

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
)

// sendParallel is how many messages are in flight at once.
const sendParallel = 4

// job is one notification handed to a sender, with what it needs.
type job struct {
	alertID string
	n       Notification
	topic   string
	doc     []byte
}

// Dispatch sends every outbox entry that is due at the clock's now, as far
// as the global rate limit allows, and records each outcome durably. It
// returns when the next entry falls due (zero if none waits). Before each
// attempt the entry is marked in flight on disk, so a crash during the
// attempt is known at restart; a decided entry is never dropped.
func (mg *Manager) Dispatch(ctx context.Context) (time.Time, error) {
	jobs, next, err := mg.due()
	if err != nil || len(jobs) == 0 {
		return next, err
	}
	type result struct {
		j       job
		receipt sms.Receipt
		err     error
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, sendParallel)
	for i := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			j := jobs[i]
			r := result{j: j}
			r.receipt, r.err = mg.send(ctx, j)
			results[i] = r
		}(i)
	}
	wg.Wait()
	mg.mu.Lock()
	defer mg.mu.Unlock()
	now := mg.now()
	for _, r := range results {
		a := mg.alerts[r.j.alertID]
		if a == nil {
			continue
		}
		n := a.notification(r.j.n.ID)
		if n == nil {
			continue
		}
		mg.outcome(a, n, r.receipt, r.err, now)
		if err := mg.st.put(a); err != nil {
			return next, err
		}
	}
	if err := mg.st.sync(); err != nil {
		return next, err
	}
	mg.poke() // more may be due
	return mg.nextDueLocked(next), nil
}

// nextDueLocked returns the earlier of next and the first pending entry's
// NotBefore that lies ahead.
func (mg *Manager) nextDueLocked(next time.Time) time.Time {
	now := mg.now()
	for nid, aid := range mg.outbox {
		if n := mg.alerts[aid].notification(nid); n != nil && n.State == NotifyPending && n.NotBefore.After(now) &&
			(next.IsZero() || n.NotBefore.Before(next)) {
			next = n.NotBefore
		}
	}
	return next
}

// due picks the entries to send now and marks them in flight durably. It
// also settles entries that should no longer go out.
func (mg *Manager) due() ([]job, time.Time, error) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	now := mg.now()
	type entry struct {
		a *Alert
		n *Notification
	}
	var ready []entry
	var next time.Time
	for nid, aid := range mg.outbox {
		a := mg.alerts[aid]
		n := a.notification(nid)
		if n == nil || n.State != NotifyPending {
			delete(mg.outbox, nid)
			continue
		}
		if n.NotBefore.After(now) {
			if next.IsZero() || n.NotBefore.Before(next) {
				next = n.NotBefore
			}
			continue
		}
		ready = append(ready, entry{a, n})
	}
	// Critical first, then oldest first.
	sort.Slice(ready, func(i, j int) bool {
		x, y := ready[i].n, ready[j].n
		if x.Critical != y.Critical {
			return x.Critical
		}
		if !x.DecidedAt.Equal(y.DecidedAt) {
			return x.DecidedAt.Before(y.DecidedAt)
		}
		return x.ID < y.ID
	})
	var jobs []job
	touched := map[*Alert]bool{}
	for _, e := range ready {
		a, n := e.a, e.n
		if n.Channel == ChannelSMS && n.Reason != ReasonResolved && a.State == StateResolved && n.Attempts == 0 &&
			n.NotBefore.After(n.DecidedAt) {
			// Held for quiet hours, and over before they ended.
			n.State, n.Why = NotifySuppressed, "the alert resolved while the message waited for quiet hours to end"
			delete(mg.outbox, n.ID)
			mg.m.finished(n.Channel, mg.sender.Name(), n.State)
			a.record(now, Event{Kind: EventNotification, Notification: n.ID, Text: n.Why})
			touched[a] = true
			continue
		}
		if n.Channel == ChannelSMS {
			if wait := mg.limiter.take(now); wait > 0 {
				if t := now.Add(wait); next.IsZero() || t.Before(next) {
					next = t
				}
				break
			}
		}
		n.InFlight = true
		n.Attempts++
		touched[a] = true
		j := job{alertID: a.ID, n: *n}
		if n.Channel == ChannelCAP {
			for _, c := range a.CAP {
				if c.Identifier == n.CAP {
					j.doc = []byte(c.XML)
				}
			}
			j.topic = capTopic(a)
		}
		jobs = append(jobs, j)
	}
	for a := range touched {
		if err := mg.st.put(a); err != nil {
			return nil, next, err
		}
	}
	return jobs, next, mg.st.sync()
}

// send makes one attempt.
func (mg *Manager) send(ctx context.Context, j job) (sms.Receipt, error) {
	mg.mu.Lock()
	timeout, provider := mg.cfg.SMS.Timeout, mg.cfg.SMS
	mg.mu.Unlock()
	if j.n.Channel == ChannelCAP {
		if mg.opts.CAP == nil {
			return sms.Receipt{Provider: "none"}, nil
		}
		if err := mg.opts.CAP.Publish(j.topic, j.doc, true, 1); err != nil {
			return sms.Receipt{}, &sms.Error{Provider: "mqtt", Message: err.Error(), Retryable: true, Err: err}
		}
		return sms.Receipt{Provider: "mqtt"}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg := sms.Message{ID: j.n.ID, To: j.n.Recipient.Phone, Template: j.n.Template,
		Code: provider.TemplateCode(j.n.Template), Text: j.n.Text, Lang: j.n.Recipient.Lang}
	for _, p := range j.n.Params {
		msg.Params = append(msg.Params, sms.Param{Name: p.Name, Value: p.Value})
	}
	return mg.sender.Send(ctx, msg)
}

// outcome records one attempt's result.
func (mg *Manager) outcome(a *Alert, n *Notification, r sms.Receipt, err error, now time.Time) {
	n.InFlight = false
	provider := mg.sender.Name()
	if n.Channel == ChannelCAP {
		provider = "mqtt"
	}
	if err == nil {
		n.State, n.SentAt, n.Provider, n.ProviderID, n.Why = NotifySent, now, r.Provider, r.MessageID, ""
		delete(mg.outbox, n.ID)
		mg.m.finished(n.Channel, provider, n.State)
		mg.m.latency.WithLabelValues(string(n.Channel)).Observe(now.Sub(n.DecidedAt).Seconds())
		a.record(now, Event{Kind: EventNotification, Notification: n.ID,
			Text: fmt.Sprintf("sent to %s via %s (attempt %d)", recipientName(n), provider, n.Attempts)})
		return
	}
	retry, after := sms.Classify(err)
	if errors.Is(err, context.Canceled) {
		retry = true // we are stopping; the entry stays for the next start
		n.Attempts--
	}
	n.Why = err.Error()
	if retry && after > maxRetryAfter {
		retry = false // e.g. a daily cap: the alert is stale by then
		n.Why += fmt.Sprintf(" (the gateway asks to wait %s; not worth it for an alert)", after)
	}
	if retry && n.Attempts < mg.cfg.SMS.MaxAttempts {
		n.NotBefore = now.Add(max(after, backoff(n.Attempts)))
		mg.m.retried.WithLabelValues(string(n.Channel), provider).Inc()
		a.record(now, Event{Kind: EventNotification, Notification: n.ID,
			Text: fmt.Sprintf("attempt %d to %s failed, retrying at %s: %s", n.Attempts, recipientName(n),
				n.NotBefore.In(mg.router.loc).Format("15:04:05"), n.Why)})
		return
	}
	n.State = NotifyFailed
	delete(mg.outbox, n.ID)
	mg.m.finished(n.Channel, provider, n.State)
	what := "permanent error"
	if retry {
		what = fmt.Sprintf("gave up after %d attempts", n.Attempts)
	}
	a.record(now, Event{Kind: EventNotification, Notification: n.ID,
		Text: fmt.Sprintf("to %s failed (%s): %s", recipientName(n), what, n.Why)})
	mg.log.Error().Str("alert", a.ID).Str("notification", n.ID).Str("to", n.Recipient.Phone).
		Str("why", n.Why).Msg("notification failed")
}

func recipientName(n *Notification) string {
	if n.Channel == ChannelCAP {
		return "MQTT (CAP " + n.CAP + ")"
	}
	return n.Recipient.Name
}

// maxRetryAfter is the longest wait a gateway may ask for before the
// message is given up instead.
const maxRetryAfter = 30 * time.Minute

// backoff is the wait before attempt n+1: 2 s doubling, at most 5 min.
func backoff(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// Run sends and ticks on the wall clock until ctx ends: at once when
// something is decided, at least every second otherwise.
func (mg *Manager) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var ticked time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-mg.wake:
		case <-timer.C:
		}
		if now := mg.now(); now.Sub(ticked) >= time.Second {
			ticked = now
			if err := mg.Tick(now); err != nil {
				return fmt.Errorf("alerting: %w", err)
			}
		}
		next, err := mg.Dispatch(ctx)
		if err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		wait := time.Second
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// bucket is a token bucket: rate per second, burst of one second's worth.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket { return &bucket{rate: rate, tokens: max(1, rate)} }

// take spends a token at now, or returns how long until one is free.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(max(1, b.rate), b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
