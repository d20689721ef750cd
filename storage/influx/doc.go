// Package influx stores accepted telemetry in InfluxDB 1.8 and manages a local
// influxd for development and tests.
//
// # Writer
//
// Writer drains the durable spool (storage/spool) into InfluxDB through the
// v2 write API that InfluxDB 1.8 serves (/api/v2/write, bucket "db/rp"). It
// takes a batch from its Source, turns the records into line protocol, writes
// them in one gzip-compressed blocking request and acknowledges the batch to
// the Source only once InfluxDB has accepted it. Transient failures (network,
// timeouts, 5xx, 429, and configuration errors such as 401/403/404) are
// retried forever with exponential backoff, so the spool, not InfluxDB's
// client library, is the buffer during an outage. Data errors (400, 413) are
// bisected down to the offending records, which go to the dead-letter
// callback; the rest of the batch is stored and the batch acknowledged.
//
// # Data model
//
// One measurement per kind (telemetry.Kind.Measurement), one tag, the
// timestamp is the device's event time in nanoseconds:
//
//	truck_gps      device=<id>  lat, lon, speed_kmh, heading (float), sats (int), valid (bool)
//	truck_sensors  device=<id>  cover, body (string), load_kg (float, only when the truck reported a load)
//	gauge_rain     device=<id>  mm, interval_s (float)
//	gauge_depth    device=<id>  depth_cm (float)
//
// and on every measurement: seq (int, the device's message counter), late
// (bool, arrived out of order or long after its event time) and delay_ms
// (int, receive time minus event time in milliseconds; negative when the
// device clock runs ahead).
//
// A point is identified by (measurement, tag set, timestamp); writing the same
// point again overwrites it. The spool delivers at least once (a crash between
// the write and the Ack re-delivers the batch), and this overwrite rule is what
// makes re-delivery idempotent: no duplicates, whatever is replayed. The flip
// side is that two distinct messages from one device and kind with the same
// event time keep only the last one written.
//
// Non-finite floats (NaN, ±Inf) cannot be expressed in line protocol; such a
// field is left out of its point rather than failing the write.
//
// # Managed influxd
//
// StartManaged runs InfluxDB 1.8.10 on loopback ports with a generated
// configuration, installing it with `go install` into a cache folder when
// asked to. `make run` and the integration tests (internal/testenv) use it.
package influx
