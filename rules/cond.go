package rules

import "time"

// cond is the state machine of one condition rule on one subject, after
// Prometheus' Inactive → Pending → Firing: the condition must hold for a
// dwell before it fires and be absent for a clear time before it resolves,
// so that a GPS fix drifting across an edge does not flap the alert. Times
// are event-time Unix nanoseconds; zero means unset.
type cond struct {
	since   int64 // the condition has held since (pending or firing); 0 = not holding
	absent  int64 // while firing: the condition has not held since; 0 = holding
	started int64 // while firing: the alert's start (= since when it fired)
	version int32 // events emitted for the current alert
	firing  bool
}

// transition is what an update asks the caller to announce.
type transition uint8

const (
	noChange transition = iota
	raise
	resolve
)

// update feeds the condition at event time now. from, when not zero and earlier than now, is when it began to
// hold according to a late-arriving message (a sensor change that arrives
// after the fix that follows it). dwell and clear are the rule's durations.
//
// A pending condition fires once raiseHolds has been true for dwell; a
// firing one resolves once clearHolds has been true for clear. The two are
// separate because most rules clear on a different condition than the one
// that raised them (an uncovered load clears when the cover is closed, not
// when the truck stops at a red light).
func (c *cond) update(now int64, raiseHolds, clearHolds bool, from int64, dwell, clear time.Duration) transition {
	if c.firing {
		if !clearHolds {
			c.absent = 0
			return noChange
		}
		if c.absent == 0 {
			c.absent = now
			if from != 0 && from < now {
				c.absent = from
			}
		}
		if now-c.absent >= int64(clear) {
			c.end()
			return resolve
		}
		return noChange
	}
	if raiseHolds {
		start := now
		if from != 0 && from < now {
			start = from
		}
		if c.since == 0 || start < c.since {
			c.since = start
		}
		if now-c.since >= int64(dwell) {
			c.firing, c.started, c.version = true, c.since, 0
			return raise
		}
		return noChange
	}
	c.since = 0
	return noChange
}

// forceResolve ends a firing condition at once (the subject left the
// configuration, or a rule's premise disappeared).
func (c *cond) forceResolve() bool {
	if !c.firing {
		c.since = 0
		return false
	}
	c.end()
	return true
}

// end leaves the firing state, keeping started and version for the
// resolved event.
func (c *cond) end() { *c = cond{started: c.started, version: c.version} }

// idle reports whether the condition holds no state worth keeping.
func (c *cond) idle() bool { return c.since == 0 && !c.firing }
