// Package rules will hold the streaming rules engine: per-truck and per-gauge
// state evaluated in event time (uncovered loads, off-route, illegal dumping,
// permit windows, silent trucks, rainstorm and waterlogging thresholds). It
// will receive accepted records through ingest's Observer, declare the
// interface it hands alert events to, and import only telemetry.
//
// Nothing is implemented here yet; the engine is the next piece of work.
package rules
