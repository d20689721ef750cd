package alerting

import (
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// State is where an alert stands in its lifecycle.
type State string

// The lifecycle states. An alert is firing until someone acknowledges it or
// it resolves; a resolved alert reopens if its condition returns within the
// flap window.
const (
	StateFiring       State = "firing"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Alert is one alert's record: the condition the rules engine reported, its
// lifecycle, notes, and every state change and notification in History.
// Values returned by the Manager are copies the caller may keep.
type Alert struct {
	// ID is the rules engine's id of the event that opened it.
	ID       string            `json:"id"`
	Rule     string            `json:"rule"`
	Severity string            `json:"severity"`
	State    State             `json:"state"`
	Subject  telemetry.Subject `json:"subject"`
	// StartedAt is the event time the condition began; UpdatedAt the event
	// time of the latest rules event.
	StartedAt time.Time          `json:"started_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	Location  telemetry.Location `json:"location"`
	// Details are those of the latest rules event.
	Details map[string]any `json:"details,omitempty"`
	// OpenedAt is when urbanwatch received it (wall clock): escalation and
	// flap windows count from here.
	OpenedAt time.Time `json:"opened_at"`
	// Sources are the rules engine's alerts folded into this one (more than
	// one when it reopened after a flap), each with the last version
	// applied.
	Sources []Source `json:"sources"`

	AckedBy    string    `json:"acked_by,omitempty"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"` // "rules" or a person
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// RuleResolvedAt is the event time the rules engine last reported the
	// condition gone; zero while it holds.
	RuleResolvedAt time.Time `json:"rule_resolved_at,omitzero"`
	// Announced is set once a resolution has been told (after the flap
	// window); a resolved alert reopens only before then.
	Announced bool `json:"resolution_announced,omitempty"`
	Reopened  int  `json:"reopened,omitempty"`
	// Tier is the escalation tier reached; 0 before any escalation.
	Tier int `json:"tier,omitempty"`
	// NotifiedSeverity is the highest severity announced so far.
	NotifiedSeverity string `json:"notified_severity,omitempty"`
	// Outcome is what came of the case, set by a person: one of Outcomes.
	// The bureau counts outcomes; "" until someone records one.
	Outcome   Outcome   `json:"outcome,omitempty"`
	OutcomeBy string    `json:"outcome_by,omitempty"`
	OutcomeAt time.Time `json:"outcome_at,omitzero"`

	Notes         []Note         `json:"notes,omitempty"`
	History       []Event        `json:"history"`
	Notifications []Notification `json:"notifications,omitempty"`
	CAP           []CAPMessage   `json:"cap,omitempty"`
}

// Outcome is what came of an alert's case.
type Outcome string

// The case outcomes.
const (
	OutcomeWarned          Outcome = "warned"           // the driver was warned (批评教育)
	OutcomeFined           Outcome = "fined"            // a penalty was imposed (罚款)
	OutcomePermitSuspended Outcome = "permit_suspended" // the permit was suspended (暂停准运)
	OutcomeFalseAlarm      Outcome = "false_alarm"      // nothing was wrong (误报)
)

// Outcomes lists every valid Outcome.
var Outcomes = []Outcome{OutcomeWarned, OutcomeFined, OutcomePermitSuspended, OutcomeFalseAlarm}

// Source is one rules-engine alert folded into a stored alert.
type Source struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

// Note is a remark someone added.
type Note struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// EventKind names an entry of an alert's history.
type EventKind string

// The history entries.
const (
	EventFired        EventKind = "fired"         // the rules engine raised it
	EventUpdated      EventKind = "updated"       // a new version: level or severity changed
	EventRuleResolved EventKind = "rule_resolved" // the condition cleared
	EventReopened     EventKind = "reopened"      // it returned within the flap window
	EventAcknowledged EventKind = "acknowledged"
	EventResolved     EventKind = "resolved" // by a person, or by the rules once the flap window passed
	EventNote         EventKind = "note"
	EventEscalated    EventKind = "escalated"
	EventNotification EventKind = "notification" // a notification changed state
	EventCAP          EventKind = "cap"          // a CAP message was issued
	EventOutcome      EventKind = "outcome"      // a person recorded the case outcome
)

// Event is one entry of an alert's history.
type Event struct {
	At   time.Time `json:"at"` // wall clock
	Kind EventKind `json:"kind"`
	By   string    `json:"by,omitempty"`
	Text string    `json:"text,omitempty"`
	// Version is the rules event's version, for fired and updated.
	Version      int    `json:"version,omitempty"`
	Severity     string `json:"severity,omitempty"`
	Notification string `json:"notification,omitempty"` // its ID
}

// Channel is how a notification travels.
type Channel string

// The channels.
const (
	ChannelSMS Channel = "sms"
	ChannelCAP Channel = "cap" // a CAP document published on MQTT
)

// NotifyState is where a notification stands.
type NotifyState string

// The notification states. Pending ones are the outbox.
const (
	NotifyPending    NotifyState = "pending"
	NotifySent       NotifyState = "sent"
	NotifyFailed     NotifyState = "failed"     // permanent error or attempts exhausted
	NotifySuppressed NotifyState = "suppressed" // rate limit, or its alert resolved while it waited
)

// Reason says why a notification was decided.
type Reason string

// The reasons.
const (
	ReasonFired     Reason = "fired"
	ReasonUpgraded  Reason = "upgraded"
	ReasonEscalated Reason = "escalated"
	ReasonResolved  Reason = "resolved"
	ReasonCAP       Reason = "cap"
)

// Recipient is who a notification goes to, and why.
type Recipient struct {
	// ID is the person's id, or "company:{id}:{n}" for a company's contact.
	ID    string `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Lang  string `json:"lang"`
	// Via is how they were chosen: "company:C01", "group:night-kuiwen".
	Via string `json:"via"`
	// OnDuty is true when reached through a group on duty: no quiet hours.
	OnDuty bool `json:"on_duty,omitempty"`
}

// Notification is one message to one recipient (or one CAP document) and
// its delivery.
type Notification struct {
	// ID is unique and stable: the idempotency key a gateway sees on every
	// attempt.
	ID        string      `json:"id"`
	Channel   Channel     `json:"channel"`
	Reason    Reason      `json:"reason"`
	Recipient Recipient   `json:"recipient,omitzero"`
	Template  string      `json:"template,omitempty"`
	Params    []Param     `json:"params,omitempty"`
	Text      string      `json:"text,omitempty"`
	Critical  bool        `json:"critical,omitempty"`
	State     NotifyState `json:"state"`
	// Why is the reason for a suppression or the last error.
	Why       string    `json:"why,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	// NotBefore holds it back (quiet hours, backoff).
	NotBefore time.Time `json:"not_before,omitzero"`
	Attempts  int       `json:"attempts,omitempty"`
	// InFlight is set while an attempt is under way; found set after a
	// restart it means the gateway may have the message already.
	InFlight   bool      `json:"in_flight,omitempty"`
	SentAt     time.Time `json:"sent_at,omitzero"`
	Provider   string    `json:"provider,omitempty"`
	ProviderID string    `json:"provider_id,omitempty"`
	// CAP is the identifier of the CAP message this publishes.
	CAP string `json:"cap,omitempty"`
}

// Param is one template variable, rendered.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CAPMessage is one CAP 1.2 document issued for an alert.
type CAPMessage struct {
	Identifier string    `json:"identifier"`
	Sent       time.Time `json:"sent"`
	MsgType    string    `json:"msg_type"` // Alert, Update, Cancel
	Seq        uint64    `json:"seq"`
	Headline   string    `json:"headline"`
	XML        string    `json:"xml"`
}

// active reports whether the alert still holds (not resolved).
func (a *Alert) active() bool { return a.State != StateResolved }

func (a *Alert) record(at time.Time, e Event) {
	e.At = at
	a.History = append(a.History, e)
}

func (a *Alert) source(id string) *Source {
	for i := range a.Sources {
		if a.Sources[i].ID == id {
			return &a.Sources[i]
		}
	}
	return nil
}

func (a *Alert) notification(id string) *Notification {
	for i := range a.Notifications {
		if a.Notifications[i].ID == id {
			return &a.Notifications[i]
		}
	}
	return nil
}

// clone returns a deep enough copy for a caller to keep.
func (a *Alert) clone() *Alert {
	c := *a
	c.Details = make(map[string]any, len(a.Details))
	for k, v := range a.Details {
		c.Details[k] = v
	}
	c.Sources = append([]Source(nil), a.Sources...)
	c.Notes = append([]Note(nil), a.Notes...)
	c.History = append([]Event(nil), a.History...)
	c.Notifications = append([]Notification(nil), a.Notifications...)
	for i := range c.Notifications {
		c.Notifications[i].Params = append([]Param(nil), c.Notifications[i].Params...)
	}
	c.CAP = append([]CAPMessage(nil), a.CAP...)
	return &c
}

// severityRank orders severities; unknown ones rank lowest.
func severityRank(s string) int {
	switch s {
	case "minor":
		return 1
	case "warning":
		return 2
	case "major":
		return 3
	case "critical":
		return 4
	}
	return 0
}
