package influx

import (
	"math"
	"strconv"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// AppendLine appends the line-protocol line for r (see the package
// documentation for the data model) to b and returns the extended slice. The
// line is NOT terminated by a newline; callers separate lines themselves.
//
// The measurement, the device tag value and string field values are escaped
// per the line protocol, so any device id yields a parseable line (ids are
// restricted to [A-Za-z0-9._-] upstream; this is defence in depth). Bytes that
// InfluxDB 1.8's parser cannot carry in a tag (backslash, which it misreads
// before a delimiter, and control characters such as newline) are replaced by
// '_'. An empty device id leaves the point untagged. Non-finite floats are left out. A seq above the int64
// range is clamped to math.MaxInt64.
func AppendLine(b []byte, r *telemetry.Record) []byte {
	b = appendEscaped(b, r.Kind.Measurement(), escMeasurement)
	if r.Device != "" {
		b = append(b, ",device="...)
		b = appendEscaped(b, r.Device, escTag)
	}
	f := fields{b: b, sep: ' '}
	switch r.Kind {
	case telemetry.KindGPS:
		f.float("lat", r.Fix.Lat)
		f.float("lon", r.Fix.Lon)
		f.float("speed_kmh", r.Fix.SpeedKmh)
		f.float("heading", r.Fix.Heading)
		f.int("sats", int64(r.Fix.Sats))
		f.bool("valid", r.Fix.Valid)
	case telemetry.KindSensors:
		f.string("cover", r.Sensors.Cover.String())
		f.string("body", r.Sensors.Body.String())
		if r.Sensors.HasLoad {
			f.float("load_kg", r.Sensors.LoadKg)
		}
	case telemetry.KindRain:
		f.float("mm", r.Rain.MM)
		f.float("interval_s", r.Rain.IntervalS)
	case telemetry.KindDepth:
		f.float("depth_cm", r.Depth.DepthCM)
	}
	seq := r.Seq
	if seq > math.MaxInt64 {
		seq = math.MaxInt64
	}
	f.int("seq", int64(seq))
	f.bool("late", r.Late)
	f.int("delay_ms", r.Received.Sub(r.TS).Milliseconds())
	b = append(f.b, ' ')
	return strconv.AppendInt(b, r.TS.UnixNano(), 10)
}

// fields appends a field set: sep is ' ' before the first field (the
// separator from the tag set) and ',' after.
type fields struct {
	b   []byte
	sep byte
}

func (f *fields) key(k string) {
	f.b = append(f.b, f.sep)
	f.b = append(f.b, k...) // field keys are constants needing no escaping
	f.b = append(f.b, '=')
	f.sep = ','
}

func (f *fields) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	f.key(k)
	f.b = strconv.AppendFloat(f.b, v, 'g', -1, 64)
}

func (f *fields) int(k string, v int64) {
	f.key(k)
	f.b = strconv.AppendInt(f.b, v, 10)
	f.b = append(f.b, 'i')
}

func (f *fields) bool(k string, v bool) {
	f.key(k)
	f.b = strconv.AppendBool(f.b, v)
}

func (f *fields) string(k, v string) {
	f.key(k)
	f.b = append(f.b, '"')
	f.b = appendEscaped(f.b, v, escString)
	f.b = append(f.b, '"')
}

type escapeMode uint8

const (
	escMeasurement escapeMode = iota // comma, space
	escTag                           // comma, equals sign, space
	escString                        // double quote, backslash
)

// appendEscaped appends s escaped for its place in a line.
func appendEscaped(b []byte, s string, mode escapeMode) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case mode != escString && (c == '\\' || c < 0x20 || c == 0x7f):
			c = '_'
		case c == ',' || c == ' ':
			if mode != escString {
				b = append(b, '\\')
			}
		case c == '=':
			if mode == escTag {
				b = append(b, '\\')
			}
		case c == '"' || c == '\\':
			if mode == escString {
				b = append(b, '\\')
			}
		}
		b = append(b, c)
	}
	return b
}
