// Package scenario produces recorded telemetry streams, without MQTT, with
// the exact alerts the rules must raise on them: hand-made cases, one per
// rule and one per near miss that must raise nothing (Scenarios), and a
// large simulated night with a storm whose ground truth is derived from
// the simulator's own models (Night, StreamNight).
//
// A scenario's records are in arrival order, the order the rules engine
// must be fed: Header.Received is the arrival time and Header.TS the
// device's event time; Seq counts per device and kind in the order the
// device made the messages; Late is set on a record whose TS is older than
// one already delivered for the same device and kind (a fix back-filled
// after a tunnel). Its City is built in code and not validated: callers
// call City.Validate(nil) (hand-made cities use device ids such as "T1"
// that no registry holds; the night's are the demo registry's).
//
// The ground truth follows the rule definitions of docs/rules.md with the
// city's thresholds (the defaults). See judge.go for how it is derived and
// what Optional means.
package scenario

import (
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Expect is one alert a scenario must raise: rule Rule on subject Subject
// (a truck's plate, a gauge's device id), firing at event time At give or
// take Tol. Only raises are listed: a level change of a firing rainstorm
// or waterlogging alert, and every resolve, are not. Two expectations of
// one rule and subject may lie within Tol of each other (a truck through a
// speed zone twice in a minute): match alerts to the required ones first,
// each alert to at most one expectation.
type Expect struct {
	Rule, Subject string
	At            time.Time
	Tol           time.Duration
	// Optional marks an alert that measurement noise decides (a dwell
	// within a fix of its threshold, a position within metres of a fence
	// or corridor, a rain total within a bucket tip of a threshold): an
	// engine that raises it is not wrong, nor one that does not. Hand-made
	// scenarios have none.
	Optional bool
}

// Scenario is a recorded stream with its ground truth.
type Scenario struct {
	Name string
	// City is the city the records are judged against.
	City *config.City
	// Records are in arrival order.
	Records []telemetry.Record
	// Expect lists every alert the records must raise, by At; empty for a
	// near miss.
	Expect []Expect
	// Note says what the scenario plays and why it raises what it does.
	Note string
	// Start and Duration bound the records' event times; a replay closes
	// its watermark at Start+Duration.
	Start    time.Time
	Duration time.Duration
}

// Scenarios returns the hand-made cases: one per rule that must raise
// exactly its Expect, then the near misses that must raise nothing. Each
// call builds them afresh (the caller may modify them).
func Scenarios() []Scenario {
	var out []Scenario
	for _, b := range builders {
		out = append(out, b().Scenario)
	}
	return out
}
