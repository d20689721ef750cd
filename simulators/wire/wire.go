// Package wire encodes device messages as the JSON payloads of the MQTT wire
// contract (docs/protocol.md), without encoding/json: every function appends
// to a caller-owned buffer so a publisher can reuse one scratch buffer per
// goroutine.
//
// Payloads, one per telemetry.Kind:
//
//	trucks/{device}/gps      {"ts":…,"seq":n,"lat":36.710123,"lon":119.160456,"speed_kmh":32.5,"heading":270.0,"sats":9,"valid":true}
//	trucks/{device}/sensors  {"ts":…,"seq":n,"cover":"closed","body":"down","load_kg":18500}   (load_kg only when HasLoad)
//	gauges/{device}/rain     {"ts":…,"seq":n,"mm":0.4,"interval_s":60}
//	gauges/{device}/depth    {"ts":…,"seq":n,"depth_cm":12.5}
//
// ts is either RFC 3339 with millisecond precision in China Standard Time
// ("2026-11-24T22:10:05.250+08:00") or unix milliseconds (a JSON number).
package wire

import (
	"math"
	"strconv"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TSForm selects how a payload's ts is written.
type TSForm uint8

// The two ts forms of the wire contract.
const (
	// RFC3339 writes "2026-11-24T22:10:05.250+08:00": milliseconds, +08:00.
	RFC3339 TSForm = iota
	// UnixMilli writes the unix time in milliseconds as a JSON number.
	UnixMilli
)

// String names the form ("rfc3339" or "unixms").
func (f TSForm) String() string {
	if f == UnixMilli {
		return "unixms"
	}
	return "rfc3339"
}

// tsLayout is RFC 3339 with exactly three fractional digits.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// chinaTime is UTC+8 without daylight saving; fixed so that no tz database
// is needed.
var chinaTime = time.FixedZone("CST", 8*3600)

// AppendTS appends t in form f, quoted for RFC3339 and bare for UnixMilli.
func AppendTS(b []byte, t time.Time, f TSForm) []byte {
	if f == UnixMilli {
		return strconv.AppendInt(b, t.UnixMilli(), 10)
	}
	b = append(b, '"')
	b = t.In(chinaTime).AppendFormat(b, tsLayout)
	return append(b, '"')
}

// Append appends the JSON payload of r (by r.Kind) with its TS and Seq
// written in form f. r.Device is not part of the payload (it is in the topic).
// For an unknown kind it returns b unchanged.
func Append(b []byte, r *telemetry.Record, f TSForm) []byte {
	switch r.Kind {
	case telemetry.KindGPS, telemetry.KindSensors, telemetry.KindRain, telemetry.KindDepth:
	default:
		return b
	}
	b = append(b, `{"ts":`...)
	b = AppendTS(b, r.TS, f)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	switch r.Kind {
	case telemetry.KindGPS:
		x := &r.Fix
		b = append(b, `,"lat":`...)
		b = appendFixed(b, x.Lat, 6)
		b = append(b, `,"lon":`...)
		b = appendFixed(b, x.Lon, 6)
		b = append(b, `,"speed_kmh":`...)
		b = appendFixed(b, x.SpeedKmh, 1)
		b = append(b, `,"heading":`...)
		b = appendFixed(b, heading(x.Heading), 1)
		b = append(b, `,"sats":`...)
		b = strconv.AppendInt(b, int64(x.Sats), 10)
		b = append(b, `,"valid":`...)
		b = strconv.AppendBool(b, x.Valid)
	case telemetry.KindSensors:
		s := &r.Sensors
		b = append(b, `,"cover":"`...)
		b = append(b, s.Cover.String()...)
		b = append(b, `","body":"`...)
		b = append(b, s.Body.String()...)
		b = append(b, '"')
		if s.HasLoad {
			b = append(b, `,"load_kg":`...)
			b = strconv.AppendInt(b, int64(math.Round(math.Max(0, s.LoadKg))), 10)
		}
	case telemetry.KindRain:
		b = append(b, `,"mm":`...)
		b = appendFixed(b, r.Rain.MM, 1)
		b = append(b, `,"interval_s":`...)
		b = strconv.AppendFloat(b, math.Round(r.Rain.IntervalS*1000)/1000, 'f', -1, 64)
	case telemetry.KindDepth:
		b = append(b, `,"depth_cm":`...)
		b = appendFixed(b, r.Depth.DepthCM, 1)
	}
	return append(b, '}')
}

// heading wraps h into [0, 360) as it will be written with one decimal, so
// that 359.97 becomes 0.0 rather than 360.0.
func heading(h float64) float64 {
	h = math.Round(h*10) / 10
	h = math.Mod(h, 360)
	if h < 0 {
		h += 360
	}
	if h >= 360 {
		h = 0
	}
	return h
}

// appendFixed appends v with prec decimals, never as "-0.0".
func appendFixed(b []byte, v float64, prec int) []byte {
	p := math.Pow10(prec)
	v = math.Round(v*p) / p
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0 // also turns -0 into 0; JSON has no NaN or Inf
	}
	return strconv.AppendFloat(b, v, 'f', prec, 64)
}
