package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Publisher publishes a CAP document on MQTT. It must not block for long;
// an error is retried with backoff.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// Options configure a Manager.
type Options struct {
	// Dir holds the alert store; required.
	Dir string
	// Config is who is told and how; nil for config.DefaultAlerting().
	Config *config.Alerting
	// City supplies the companies' contacts, the time zone, district
	// outlines for CAP areas and the region code.
	City *config.City
	// SMS sends text messages; nil writes them to Logger (sms.NewLog).
	SMS sms.Sender
	// CAP publishes CAP documents on MQTT; nil publishes none (they are
	// still stored and served).
	CAP Publisher
	// Now is the clock; nil for time.Now.
	Now        func() time.Time
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Errors the lifecycle operations return.
var (
	ErrNotFound = errors.New("no such alert")
	ErrConflict = errors.New("the alert is not in a state that allows this")
)

// Manager is the alert lifecycle, routing, escalation and outbox. Its
// methods are safe for concurrent use.
type Manager struct {
	opts      Options
	log       zerolog.Logger
	now       func() time.Time
	templates map[string]sms.Template
	sender    sms.Sender
	m         *metrics
	wake      chan struct{}
	limiter   *bucket

	mu       sync.Mutex
	cfg      *config.Alerting
	city     *config.City
	router   *router
	st       *store
	alerts   map[string]*Alert
	bySource map[string]string // rules alert id → stored alert id
	latest   map[string]string // rule + subject → the newest stored alert id
	outbox   map[string]string // pending notification id → alert id
	// live are the alerts time still acts on: open, or resolved and not
	// yet announced. Tick visits these only.
	live   map[string]*Alert
	recent map[string][]time.Time
	capSeq uint64
	purged time.Time
	// watchers are told of every change (Watch).
	watchers []func(id string)
}

// New opens the store in opts.Dir, recovers the outbox and returns a
// Manager. A notification that was being sent when the process stopped is
// sent again with the same idempotency key (the gateway may have it).
func New(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("alerting: Dir is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = config.DefaultAlerting()
		if err := cfg.Validate(opts.City); err != nil {
			return nil, fmt.Errorf("alerting: default settings: %w", err)
		}
	}
	mg := &Manager{opts: opts, log: opts.Logger, now: opts.Now, templates: map[string]sms.Template{},
		wake: make(chan struct{}, 1), cfg: cfg, city: opts.City, router: newRouter(cfg, opts.City),
		bySource: map[string]string{}, latest: map[string]string{}, outbox: map[string]string{}, live: map[string]*Alert{},
		recent: map[string][]time.Time{}}
	for _, t := range Templates() {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("alerting: %w", err)
		}
		mg.templates[t.Name] = t
	}
	if err := checkCodes(cfg); err != nil {
		return nil, err
	}
	mg.sender = opts.SMS
	if mg.sender == nil {
		mg.sender = sms.NewLog(opts.Logger)
	}
	mg.limiter = newBucket(cfg.SMS.RatePerSecond)
	st, alerts, cut, err := openStore(opts.Dir)
	if err != nil {
		return nil, err
	}
	if cut > 0 {
		mg.log.Warn().Int64("bytes", cut).Msg("alert store: cut a damaged tail left by a crash mid-write")
	}
	mg.st, mg.alerts = st, alerts
	st.touched = mg.touched
	now := mg.now()
	for _, a := range alerts {
		mg.index(a)
		for i := range a.Notifications {
			n := &a.Notifications[i]
			if n.State != NotifyPending {
				continue
			}
			if n.InFlight {
				n.InFlight = false
				n.Why = "an attempt was under way when urbanwatch stopped; sending again with the same idempotency key"
				a.record(now, Event{Kind: EventNotification, Notification: n.ID, Text: n.Why})
				if err := st.put(a); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := st.sync(); err != nil {
		return nil, err
	}
	mg.m = newMetrics(mg, opts.Registerer)
	return mg, nil
}

// Check reports what New would refuse in settings that loaded: a template
// gateway without the id of every template.
func Check(cfg *config.Alerting) error { return checkCodes(cfg) }

// checkCodes refuses a template gateway that lacks an approved template id.
func checkCodes(cfg *config.Alerting) error {
	if !cfg.SMS.NeedsTemplateCodes() {
		return nil
	}
	var missing []string
	for _, t := range Templates() {
		if cfg.SMS.TemplateCode(t.Name) == "" {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("alerting: sms.templates needs the %s template id of: %s", cfg.SMS.Provider,
			strings.Join(missing, ", "))
	}
	return nil
}

// track keeps a in the live set while time can still act on it.
func (mg *Manager) track(a *Alert) {
	if a.State == StateResolved && a.Announced {
		delete(mg.live, a.ID)
	} else {
		mg.live[a.ID] = a
	}
}

// index adds a loaded alert to the lookups.
func (mg *Manager) index(a *Alert) {
	mg.track(a)
	for _, s := range a.Sources {
		mg.bySource[s.ID] = a.ID
	}
	k := latestKey(a.Rule, a.Subject.ID)
	if cur, ok := mg.latest[k]; !ok || mg.alerts[cur].StartedAt.Before(a.StartedAt) {
		mg.latest[k] = a.ID
	}
	hourAgo := mg.now().Add(-time.Hour)
	for i := range a.Notifications {
		n := &a.Notifications[i]
		if n.State == NotifyPending {
			mg.outbox[n.ID] = a.ID
		}
		if n.Channel == ChannelSMS && n.State != NotifySuppressed && n.DecidedAt.After(hourAgo) {
			mg.recent[n.Recipient.Phone] = append(mg.recent[n.Recipient.Phone], n.DecidedAt)
		}
	}
	for _, c := range a.CAP {
		mg.capSeq = max(mg.capSeq, c.Seq)
	}
}

// Watch registers fn to be told the id of every alert that changes: opened,
// updated, acknowledged, resolved, noted, escalated, or a notification of
// it changed state. fn is called with the Manager's lock held, so it must
// not block or call back into the Manager: hand the id to a goroutine of
// its own (the web console queues it and reads the alert with Get). A
// change may be told before it is durable; Get returns it once it is.
func (mg *Manager) Watch(fn func(id string)) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	mg.watchers = append(mg.watchers, fn)
}

func (mg *Manager) touched(id string) {
	for _, fn := range mg.watchers {
		fn(id)
	}
}

func latestKey(rule, subject string) string { return rule + "\x00" + subject }

// Close syncs and closes the store.
func (mg *Manager) Close() error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.st.close()
}

// Reload applies new settings and a new city; alerts, history and the
// outbox carry over. Decisions already made stand.
func (mg *Manager) Reload(cfg *config.Alerting, city *config.City) error {
	if cfg == nil {
		cfg = mg.cfg
	}
	if err := checkCodes(cfg); err != nil {
		return err
	}
	mg.mu.Lock()
	defer mg.mu.Unlock()
	mg.cfg, mg.city, mg.router = cfg, city, newRouter(cfg, city)
	return nil
}

func (mg *Manager) poke() {
	select {
	case mg.wake <- struct{}{}:
	default:
	}
}

// Apply records rules-engine alert events and makes every decision they
// call for (notifications, CAP messages). It returns once all of it is
// durable; events already applied (the same id and version, or older) are
// skipped, so a caller may replay its input after a crash.
func (mg *Manager) Apply(events []*telemetry.Alert) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	now := mg.now()
	for _, ev := range events {
		if err := mg.apply(ev, now); err != nil {
			return err
		}
		if id, ok := mg.bySource[ev.ID]; ok {
			mg.track(mg.alerts[id])
		}
	}
	if err := mg.st.sync(); err != nil {
		return err
	}
	mg.poke()
	return nil
}

func (mg *Manager) apply(ev *telemetry.Alert, now time.Time) error {
	if id, ok := mg.bySource[ev.ID]; ok {
		a := mg.alerts[id]
		src := a.source(ev.ID)
		if ev.Version <= src.Version {
			mg.m.duplicates.Inc()
			return nil
		}
		src.Version = ev.Version
		if ev.State == telemetry.AlertResolved {
			mg.ruleResolved(a, ev, now)
		} else {
			mg.update(a, ev, now)
		}
		return mg.st.put(a)
	}
	k := latestKey(ev.Rule, ev.Subject.ID)
	if prev := mg.alerts[mg.latest[k]]; prev != nil && ev.State == telemetry.AlertFiring && prev.State == StateResolved &&
		!prev.Announced && !prev.RuleResolvedAt.IsZero() && ev.StartedAt.Sub(prev.RuleResolvedAt) <= mg.cfg.FlapWindow {
		mg.reopen(prev, ev, now)
		return mg.st.put(prev)
	}
	a := &Alert{ID: ev.ID, Rule: ev.Rule, Severity: ev.Severity, State: StateFiring, Subject: ev.Subject,
		StartedAt: ev.StartedAt, UpdatedAt: ev.TS, Location: ev.Location, Details: ev.Details, OpenedAt: now,
		Sources: []Source{{ID: ev.ID, Version: ev.Version}}}
	mg.alerts[a.ID] = a
	mg.bySource[a.ID] = a.ID
	mg.latest[k] = a.ID
	if ev.State == telemetry.AlertResolved {
		// Its raise was never seen (the store was emptied, or alerting
		// started late): keep the record, tell nobody.
		a.State, a.ResolvedBy, a.ResolvedAt, a.RuleResolvedAt, a.Announced = StateResolved, "rules", now, ev.TS, true
		a.record(now, Event{Kind: EventRuleResolved, Version: ev.Version, Severity: ev.Severity,
			Text: "resolved before urbanwatch saw it raised; nobody was told"})
		return mg.st.put(a)
	}
	a.record(now, Event{Kind: EventFired, Version: ev.Version, Severity: ev.Severity})
	mg.m.opened.WithLabelValues(ruleTemplate(a.Rule)).Inc()
	mg.notify(a, ReasonFired, mg.router.recipients(a, now), now)
	a.NotifiedSeverity = a.Severity
	mg.issueCAP(a, now)
	return mg.st.put(a)
}

// update applies a new firing version: a level or severity change.
func (mg *Manager) update(a *Alert, ev *telemetry.Alert, now time.Time) {
	levelBefore := str(a.Details["level"])
	a.Severity, a.UpdatedAt, a.Location, a.Details = ev.Severity, ev.TS, ev.Location, ev.Details
	if a.State == StateResolved {
		// Resolved by a person while the condition still held; the rules
		// say it holds and has changed.
		mg.reopenState(a)
		a.record(now, Event{Kind: EventReopened, Version: ev.Version, Severity: ev.Severity,
			Text: "the condition still holds and changed after it was resolved by hand"})
	} else {
		a.record(now, Event{Kind: EventUpdated, Version: ev.Version, Severity: ev.Severity,
			Text: changeText(levelBefore, str(ev.Details["level"]))})
	}
	mg.upgraded(a, now)
	if str(a.Details["level"]) != levelBefore {
		mg.issueCAP(a, now)
	}
}

// upgraded tells everyone again when the severity rose above what was
// announced.
func (mg *Manager) upgraded(a *Alert, now time.Time) {
	if severityRank(a.Severity) > severityRank(a.NotifiedSeverity) {
		mg.notify(a, ReasonUpgraded, mg.router.recipients(a, now), now)
		a.NotifiedSeverity = a.Severity
	}
}

func changeText(before, after string) string {
	if before == after || after == "" {
		return ""
	}
	return "level " + before + " → " + after
}

// reopen folds a new rules alert into prev, which resolved within the flap
// window: no new page unless the severity rose.
func (mg *Manager) reopen(prev *Alert, ev *telemetry.Alert, now time.Time) {
	gap := ev.StartedAt.Sub(prev.RuleResolvedAt).Round(time.Second)
	levelBefore := str(prev.Details["level"])
	prev.Sources = append(prev.Sources, Source{ID: ev.ID, Version: ev.Version})
	mg.bySource[ev.ID] = prev.ID
	prev.Severity, prev.UpdatedAt, prev.Location, prev.Details = ev.Severity, ev.TS, ev.Location, ev.Details
	mg.reopenState(prev)
	prev.Reopened++
	prev.record(now, Event{Kind: EventReopened, Version: ev.Version, Severity: ev.Severity,
		Text: fmt.Sprintf("the condition returned %s after it cleared, within the %s flap window; no new page", gap, mg.cfg.FlapWindow)})
	mg.m.reopened.WithLabelValues(ruleTemplate(prev.Rule)).Inc()
	mg.upgraded(prev, now)
	if str(prev.Details["level"]) != levelBefore {
		mg.issueCAP(prev, now)
	}
}

// reopenState returns a resolved alert to acknowledged if someone had
// acknowledged it, else to firing.
func (mg *Manager) reopenState(a *Alert) {
	a.State = StateFiring
	if a.AckedBy != "" {
		a.State = StateAcknowledged
	}
	a.ResolvedBy, a.ResolvedAt, a.RuleResolvedAt, a.Announced = "", time.Time{}, time.Time{}, false
}

// ruleResolved applies the rules engine's resolved event. The alert is
// resolved at once; the resolution is announced after the flap window.
func (mg *Manager) ruleResolved(a *Alert, ev *telemetry.Alert, now time.Time) {
	a.UpdatedAt, a.Location = ev.TS, ev.Location
	for k, v := range ev.Details {
		if a.Details == nil {
			a.Details = map[string]any{}
		}
		if k != "level" {
			a.Details[k] = v
		}
	}
	a.RuleResolvedAt = ev.TS
	a.record(now, Event{Kind: EventRuleResolved, Version: ev.Version, Text: str(ev.Details["reason"])})
	if a.State == StateResolved {
		return
	}
	a.State, a.ResolvedBy, a.ResolvedAt = StateResolved, "rules", now
	if mg.cfg.FlapWindow == 0 {
		mg.announce(a, now)
	}
}

// announce tells the resolution of a: SMS to everyone who was told of a
// flood warning, and a CAP Cancel.
func (mg *Manager) announce(a *Alert, now time.Time) {
	a.Announced = true
	a.record(now, Event{Kind: EventResolved, By: a.ResolvedBy})
	if !floodWarning(ruleTemplate(a.Rule)) {
		return
	}
	var told []Recipient
	seen := map[string]bool{}
	for _, n := range a.Notifications {
		if n.Channel == ChannelSMS && n.State == NotifySent && n.Reason != ReasonResolved && !seen[n.Recipient.Phone] {
			seen[n.Recipient.Phone] = true
			told = append(told, n.Recipient)
		}
	}
	mg.notify(a, ReasonResolved, told, now)
	mg.issueCAP(a, now)
}

// notify decides one SMS per recipient: rendered now, queued in the
// outbox, held for quiet hours or suppressed by a rate limit.
func (mg *Manager) notify(a *Alert, reason Reason, rcs []Recipient, now time.Time) {
	if len(rcs) == 0 {
		a.record(now, Event{Kind: EventNotification, Text: string(reason) + ": nobody to tell (no contact or group on duty)"})
		return
	}
	tpl := ruleTemplate(a.Rule)
	switch reason {
	case ReasonEscalated:
		tpl = TemplateEscalated
	case ReasonResolved:
		tpl = TemplateResolved
	}
	t, ok := mg.templates[tpl]
	if !ok {
		a.record(now, Event{Kind: EventNotification, Text: "no template " + tpl})
		return
	}
	critical := a.Severity == config.SeverityCritical
	hourAgo := now.Add(-time.Hour)
	for _, rc := range rcs {
		params, text, err := t.Render(rc.Lang, vars(tpl, a, rc.Lang, now), mg.router.loc)
		n := Notification{ID: notificationID(a, len(a.Notifications)+1), Channel: ChannelSMS, Reason: reason,
			Recipient: rc, Template: tpl, Text: text, Critical: critical, State: NotifyPending, DecidedAt: now}
		for _, p := range params {
			n.Params = append(n.Params, Param{Name: p.Name, Value: p.Value})
		}
		_, perHour := mg.router.settings(rc)
		recent := slices.DeleteFunc(mg.recent[rc.Phone], func(t time.Time) bool { return t.Before(hourAgo) })
		mg.recent[rc.Phone] = recent
		switch {
		case err != nil:
			n.State, n.Why = NotifyFailed, "render: "+err.Error()
			mg.m.finished(n.Channel, mg.sender.Name(), n.State)
		case !critical && len(recent) >= perHour:
			n.State, n.Why = NotifySuppressed, fmt.Sprintf("rate limit: %d messages to this number in the last hour", len(recent))
			mg.m.finished(n.Channel, mg.sender.Name(), n.State)
		default:
			if !critical {
				if until := mg.router.quietUntil(rc, now); !until.IsZero() {
					n.NotBefore = until
					n.Why = "quiet hours until " + until.In(mg.router.loc).Format("15:04")
				}
			}
			mg.recent[rc.Phone] = append(recent, now)
			mg.outbox[n.ID] = a.ID
		}
		a.Notifications = append(a.Notifications, n)
		text = fmt.Sprintf("%s to %s (%s): %s", reason, rc.Name, rc.Via, n.State)
		if n.Why != "" {
			text += ", " + n.Why
		}
		a.record(now, Event{Kind: EventNotification, Notification: n.ID, Text: text})
	}
}

// notificationID is a short stable id: a hash of the alert id and a count.
func notificationID(a *Alert, n int) string {
	h := sha256.Sum256([]byte(a.ID))
	return fmt.Sprintf("%s-%03d", hex.EncodeToString(h[:8]), n)
}

// Acknowledge marks a firing alert as being handled by by, with an
// optional note.
func (mg *Manager) Acknowledge(id, by, note string) (*Alert, error) {
	return mg.change(id, func(a *Alert, now time.Time) error {
		if a.State != StateFiring {
			return fmt.Errorf("acknowledge %s: it is %s: %w", id, a.State, ErrConflict)
		}
		a.State, a.AckedBy, a.AckedAt = StateAcknowledged, by, now
		a.record(now, Event{Kind: EventAcknowledged, By: by, Text: note})
		mg.addNote(a, by, note, now)
		return nil
	})
}

// Resolve closes an alert by hand with a note (required: why). A flood
// warning's resolution is announced at once.
func (mg *Manager) Resolve(id, by, note string) (*Alert, error) {
	return mg.change(id, func(a *Alert, now time.Time) error {
		if a.State == StateResolved {
			return fmt.Errorf("resolve %s: already resolved: %w", id, ErrConflict)
		}
		a.State, a.ResolvedBy, a.ResolvedAt = StateResolved, by, now
		mg.announce(a, now)
		mg.addNote(a, by, note, now)
		return nil
	})
}

// AddNote adds a remark to an alert in any state.
func (mg *Manager) AddNote(id, by, note string) (*Alert, error) {
	return mg.change(id, func(a *Alert, now time.Time) error {
		mg.addNote(a, by, note, now)
		return nil
	})
}

// SetOutcome records what came of an alert's case (in any state), with an
// optional note; a later call replaces it and both stay in the history.
func (mg *Manager) SetOutcome(id, by string, o Outcome, note string) (*Alert, error) {
	if !slices.Contains(Outcomes, o) {
		return nil, fmt.Errorf("outcome %q: want one of warned, fined, permit_suspended, false_alarm", o)
	}
	return mg.change(id, func(a *Alert, now time.Time) error {
		a.Outcome, a.OutcomeBy, a.OutcomeAt = o, by, now
		a.record(now, Event{Kind: EventOutcome, By: by, Text: string(o)})
		mg.addNote(a, by, note, now)
		return nil
	})
}

func (mg *Manager) addNote(a *Alert, by, text string, now time.Time) {
	if text == "" {
		return
	}
	a.Notes = append(a.Notes, Note{At: now, By: by, Text: text})
	a.record(now, Event{Kind: EventNote, By: by, Text: text})
}

func (mg *Manager) change(id string, fn func(*Alert, time.Time) error) (*Alert, error) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	a := mg.alerts[id]
	if a == nil {
		return nil, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	now := mg.now()
	if err := fn(a, now); err != nil {
		return nil, err
	}
	mg.track(a)
	if err := mg.st.put(a); err != nil {
		return nil, err
	}
	if err := mg.st.sync(); err != nil {
		return nil, err
	}
	mg.poke()
	return a.clone(), nil
}

// Tick moves time-driven work to now: resolutions whose flap window has
// passed are announced, unacknowledged alerts escalate, alerts past
// retention are dropped, and the store compacts when it has grown.
func (mg *Manager) Tick(now time.Time) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	ids := make([]string, 0, len(mg.live))
	for id := range mg.live {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic order of decisions
	for _, id := range ids {
		a := mg.alerts[id]
		changed := false
		if a.State == StateResolved && !a.Announced && now.Sub(a.ResolvedAt) >= mg.cfg.FlapWindow {
			mg.announce(a, now)
			changed = true
		}
		if a.State == StateFiring && mg.escalate(a, now) {
			changed = true
		}
		if changed {
			if err := mg.st.put(a); err != nil {
				return err
			}
		}
		mg.track(a)
	}
	purged := 0
	if now.Sub(mg.purged) >= time.Hour {
		mg.purged = now
		purged = mg.purge(now)
	}
	if purged > 0 || mg.st.needsCompaction() {
		if err := mg.st.compact(mg.alerts); err != nil {
			return err
		}
	}
	if err := mg.st.sync(); err != nil {
		return err
	}
	mg.poke()
	return nil
}

// escalate tells the next tiers of an alert nobody acknowledged: tier n
// after n × the severity's escalation time.
func (mg *Manager) escalate(a *Alert, now time.Time) bool {
	after, ok := mg.cfg.Escalation.After[a.Severity]
	if !ok || after <= 0 {
		return false
	}
	due := int(now.Sub(a.OpenedAt) / after)
	changed := false
	for a.Tier < due && mg.router.hasTier(a.Tier+1) {
		a.Tier++
		changed = true
		rcs, groups := mg.router.escalation(a, a.Tier, now)
		text := fmt.Sprintf("not acknowledged after %s: tier %d", (time.Duration(a.Tier) * after).String(), a.Tier)
		if len(groups) > 0 {
			text += " (" + strings.Join(groups, ", ") + ")"
		}
		a.record(now, Event{Kind: EventEscalated, Severity: a.Severity, Text: text})
		mg.m.escalations.WithLabelValues(ruleTemplate(a.Rule), fmt.Sprint(a.Tier)).Inc()
		mg.notify(a, ReasonEscalated, rcs, now)
	}
	return changed
}

// purge drops resolved alerts older than the retention that have nothing
// left to send, and returns how many.
func (mg *Manager) purge(now time.Time) int {
	n := 0
	for id, a := range mg.alerts {
		if a.State != StateResolved || now.Sub(a.ResolvedAt) < mg.cfg.Retention {
			continue
		}
		pending := false
		for _, n := range a.Notifications {
			pending = pending || n.State == NotifyPending
		}
		if pending {
			continue
		}
		delete(mg.alerts, id)
		delete(mg.live, id)
		for _, s := range a.Sources {
			delete(mg.bySource, s.ID)
		}
		if k := latestKey(a.Rule, a.Subject.ID); mg.latest[k] == id {
			delete(mg.latest, k)
		}
		n++
	}
	return n
}
