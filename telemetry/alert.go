package telemetry

import (
	"encoding/json"
	"fmt"
	"time"
)

// AlertState is where an alert stands after an event.
type AlertState string

// The states an alert event reports.
const (
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// SubjectKind says what an alert is about.
type SubjectKind string

// The subject kinds.
const (
	SubjectTruck SubjectKind = "truck"
	SubjectGauge SubjectKind = "gauge" // rain gauge or water-depth point
)

// Subject is who or what an alert is about.
type Subject struct {
	Kind SubjectKind `json:"kind"`
	// ID is the truck's plate ("鲁G·A0001") or the gauge's device id. It
	// is the {subject} segment of the alert's MQTT topic.
	ID string `json:"id"`
	// Name is the gauge or point's name; for a truck, its plate.
	Name string `json:"name"`
	// Company and CompanyName: the truck's transport company.
	Company     string `json:"company,omitempty"`
	CompanyName string `json:"company_name,omitempty"`
	// District is where the gauge stands, or where the truck was.
	District string `json:"district,omitempty"`
	// Device is the device whose messages raised the alert.
	Device string `json:"device"`
}

// Location is a WGS-84 position.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Alert is one state change of one alert: the rules engine emits an Alert
// when a condition starts to hold (firing, Version 1), changes level
// (firing, Version 2, 3, …) and stops (resolved, the last Version). Every
// event of one alert carries the same ID.
type Alert struct {
	// ID identifies the alert across its events: rule, subject and the
	// event time the condition started. The same data gives the same ID,
	// in live processing and in replay.
	ID string `json:"id"`
	// Rule is the rule id, e.g. "uncovered_load".
	Rule string `json:"rule"`
	// State is firing or resolved.
	State AlertState `json:"state"`
	// Version counts this alert's events from 1.
	Version int `json:"version"`
	// Severity is minor, warning, major or critical; it may change between
	// versions (a rainstorm upgraded from yellow to orange).
	Severity string  `json:"severity"`
	Subject  Subject `json:"subject"`
	// StartedAt is the event time the condition began to hold (before the
	// rule's dwell), TS the event time of this state change.
	StartedAt time.Time `json:"started_at"`
	TS        time.Time `json:"ts"`
	// Location is where the subject was at TS.
	Location Location `json:"location"`
	// Details holds the measured values and the thresholds they crossed,
	// per rule (docs/protocol.md lists the keys).
	Details map[string]any `json:"details"`
}

// AlertID builds the ID of the alert of rule on subject that started at
// started.
func AlertID(rule, subject string, started time.Time) string {
	return fmt.Sprintf("%s/%s/%s", rule, subject, started.UTC().Format("20060102T150405.000Z"))
}

// Key identifies one event of an alert.
func (a *Alert) Key() string { return fmt.Sprintf("%s#%d", a.ID, a.Version) }

// Topic returns the MQTT topic the alert is published on:
// urbanwatch/alerts/{rule}/{subject}.
func (a *Alert) Topic() string { return "urbanwatch/alerts/" + a.Rule + "/" + a.Subject.ID }

// MarshalJSON writes the alert with times in RFC 3339 UTC with milliseconds.
func (a *Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	return json.Marshal(&struct {
		*plain
		StartedAt string `json:"started_at"`
		TS        string `json:"ts"`
	}{(*plain)(a), a.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		a.TS.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Alert) UnmarshalJSON(b []byte) error {
	type plain Alert
	return json.Unmarshal(b, (*plain)(a))
}
