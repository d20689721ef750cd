// Package telemetry holds the domain types every stage of urbanwatch shares:
// the accepted device messages (GPS fixes, truck sensor states, rain and
// water-depth readings) and their compact binary encoding for the spool.
//
// It imports nothing of urbanwatch's own, so that ingest, storage, rules and
// alerting can all depend on it without depending on each other.
package telemetry

import (
	"fmt"
	"time"
)

// Kind names what a Record carries. Each kind has one MQTT topic suffix and one
// InfluxDB measurement.
type Kind uint8

// The message kinds of the wire contract (docs/protocol.md).
const (
	KindUnknown Kind = iota
	KindGPS          // trucks/{device}/gps
	KindSensors      // trucks/{device}/sensors
	KindRain         // gauges/{device}/rain
	KindDepth        // gauges/{device}/depth
)

// Kinds lists every valid Kind, in wire order.
var Kinds = []Kind{KindGPS, KindSensors, KindRain, KindDepth}

// String returns the topic suffix of the kind ("gps", "sensors", "rain",
// "depth"), or "unknown".
func (k Kind) String() string {
	switch k {
	case KindGPS:
		return "gps"
	case KindSensors:
		return "sensors"
	case KindRain:
		return "rain"
	case KindDepth:
		return "depth"
	}
	return "unknown"
}

// Class returns the device class that publishes this kind.
func (k Kind) Class() Class {
	switch k {
	case KindGPS, KindSensors:
		return ClassTruck
	case KindRain, KindDepth:
		return ClassGauge
	}
	return ""
}

// Measurement returns the InfluxDB measurement the kind is stored in.
func (k Kind) Measurement() string {
	switch k {
	case KindGPS:
		return "truck_gps"
	case KindSensors:
		return "truck_sensors"
	case KindRain:
		return "gauge_rain"
	case KindDepth:
		return "gauge_depth"
	}
	return "unknown"
}

// Class is a kind of device. It is also the first segment of the device's
// MQTT topics.
type Class string

// The device classes.
const (
	ClassTruck Class = "trucks" // GPS terminal plus cover, body and load sensors
	ClassGauge Class = "gauges" // rain gauge and/or water-depth sensor
	// ClassOperator is a consumer of alerts (a duty console, a dispatch
	// system): it may subscribe to urbanwatch/alerts/# and publishes
	// nothing.
	ClassOperator Class = "operators"
)

// Topic returns the MQTT topic a device of class c publishes kind k on.
func Topic(device string, k Kind) string {
	return string(k.Class()) + "/" + device + "/" + k.String()
}

// Cover is the state of a truck's load cover (密闭).
type Cover uint8

// Cover states; CoverUnknown means the message carried none.
const (
	CoverUnknown Cover = iota
	CoverClosed
	CoverOpen
	CoverFault
)

// String returns the wire name of the cover state.
func (c Cover) String() string {
	switch c {
	case CoverClosed:
		return "closed"
	case CoverOpen:
		return "open"
	case CoverFault:
		return "fault"
	}
	return "unknown"
}

// ParseCover maps a wire name to a Cover; ok is false for anything else.
func ParseCover(s string) (c Cover, ok bool) {
	switch s {
	case "closed":
		return CoverClosed, true
	case "open":
		return CoverOpen, true
	case "fault":
		return CoverFault, true
	}
	return CoverUnknown, false
}

// Body is the state of a truck's tipping body (举升).
type Body uint8

// Body states; BodyUnknown means the message carried none.
const (
	BodyUnknown Body = iota
	BodyDown
	BodyRaised
)

// String returns the wire name of the body state.
func (b Body) String() string {
	switch b {
	case BodyDown:
		return "down"
	case BodyRaised:
		return "raised"
	}
	return "unknown"
}

// ParseBody maps a wire name to a Body; ok is false for anything else.
func ParseBody(s string) (b Body, ok bool) {
	switch s {
	case "down":
		return BodyDown, true
	case "raised":
		return BodyRaised, true
	}
	return BodyUnknown, false
}

// Header is what every accepted message carries besides its payload.
type Header struct {
	Device   string    // device id, as authenticated
	Seq      uint64    // the device's message counter
	TS       time.Time // event time, from the device
	Received time.Time // when urbanwatch received it
	// Late is set when the message arrived out of order (older than one
	// already accepted from the same device and kind) or long after its
	// event time. Late messages are kept, never dropped.
	Late bool
}

// Fix is a GPS position report (trucks/{device}/gps), WGS-84.
type Fix struct {
	Lat, Lon float64 // degrees
	SpeedKmh float64
	Heading  float64 // degrees clockwise from north, [0, 360)
	Sats     int     // satellites used
	Valid    bool    // the terminal's fix flag
}

// SensorState is a truck's sensor report (trucks/{device}/sensors).
type SensorState struct {
	Cover   Cover
	Body    Body
	LoadKg  float64 // meaningful only when HasLoad
	HasLoad bool    // the truck has a load sensor and reported it
}

// RainReading is a rain gauge report (gauges/{device}/rain): MM of rain fell
// in the IntervalS seconds before TS.
type RainReading struct {
	MM        float64
	IntervalS float64
}

// DepthReading is a water-depth report at a waterlogging point
// (gauges/{device}/depth).
type DepthReading struct {
	DepthCM float64
}

// Record is one accepted device message. Kind says which of Fix, Sensors,
// Rain and Depth is meaningful; the others are zero.
type Record struct {
	Kind Kind
	Header
	Fix     Fix
	Sensors SensorState
	Rain    RainReading
	Depth   DepthReading
}

// Key identifies a record for deduplication: a device's seq counts per kind.
type Key struct {
	Device string
	Kind   Kind
	Seq    uint64
}

// Key returns the record's deduplication key.
func (r *Record) Key() Key { return Key{Device: r.Device, Kind: r.Kind, Seq: r.Seq} }

// String is a short human description, for logs.
func (r *Record) String() string {
	return fmt.Sprintf("%s %s seq=%d ts=%s", r.Device, r.Kind, r.Seq, r.TS.Format(time.RFC3339Nano))
}
