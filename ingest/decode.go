package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Reason is why a message was rejected. Its values are the label values of
// urbanwatch_ingest_rejected_total and are listed in docs/protocol.md.
type Reason string

// Rejection reasons.
const (
	ReasonOversized        Reason = "oversized"         // payload over the size limit
	ReasonUnknownTopic     Reason = "unknown_topic"     // not one of the four device topics
	ReasonIdentityMismatch Reason = "identity_mismatch" // {device} is not the authenticated device
	ReasonUnknownDevice    Reason = "unknown_device"    // device not in the registry, or of the wrong class
	ReasonMalformedJSON    Reason = "malformed_json"    // not one JSON object
	ReasonWrongType        Reason = "wrong_type"        // a field of the wrong JSON type
	ReasonMissingField     Reason = "missing_field"     // a required field is absent or null
	ReasonUnknownField     Reason = "unknown_field"     // a field the contract does not define
	ReasonNotFinite        Reason = "not_finite"        // NaN or ±Inf
	ReasonOutOfRange       Reason = "out_of_range"      // a value outside its documented range
	ReasonTSFuture         Reason = "ts_future"         // ts too far ahead of the receive time
	ReasonTSTooOld         Reason = "ts_too_old"        // ts too far behind the receive time
)

// Reasons lists every rejection reason, so metrics can be pre-created at zero.
var Reasons = []Reason{ReasonOversized, ReasonUnknownTopic, ReasonIdentityMismatch, ReasonUnknownDevice,
	ReasonMalformedJSON, ReasonWrongType, ReasonMissingField, ReasonUnknownField, ReasonNotFinite,
	ReasonOutOfRange, ReasonTSFuture, ReasonTSTooOld}

// Rejection is the error for a message that breaks the wire contract: a
// Reason for counting and a Detail a person can act on.
type Rejection struct {
	Reason Reason
	Detail string
}

// Error implements error.
func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ParseTopic splits a device topic "{class}/{device}/{kind}" and checks that
// the kind belongs to the class. It allocates nothing but the device string.
func ParseTopic(topic string) (device string, kind telemetry.Kind, rej *Rejection) {
	class, rest, ok1 := strings.Cut(topic, "/")
	device, suffix, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || device == "" || strings.Contains(suffix, "/") {
		return "", 0, reject(ReasonUnknownTopic, "topic %q: want trucks/{device}/gps|sensors or gauges/{device}/rain|depth", topic)
	}
	switch {
	case class == "trucks" && suffix == "gps":
		kind = telemetry.KindGPS
	case class == "trucks" && suffix == "sensors":
		kind = telemetry.KindSensors
	case class == "gauges" && suffix == "rain":
		kind = telemetry.KindRain
	case class == "gauges" && suffix == "depth":
		kind = telemetry.KindDepth
	default:
		return "", 0, reject(ReasonUnknownTopic, "topic %q: want trucks/{device}/gps|sensors or gauges/{device}/rain|depth", topic)
	}
	return device, kind, nil
}

// wireTS is the ts field: RFC 3339 with an offset, or unix milliseconds.
type wireTS struct{ t time.Time }

func (w *wireTS) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return reject(ReasonWrongType, "ts %q: want RFC 3339 with offset, e.g. 2026-11-24T22:10:05+08:00, or unix milliseconds", s)
		}
		w.t = t
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return reject(ReasonWrongType, "ts %s: want RFC 3339 string or integer unix milliseconds", truncate(b, 40))
	}
	if ms < 0 || ms > 1<<52 {
		return reject(ReasonOutOfRange, "ts %d ms out of range", ms)
	}
	w.t = time.UnixMilli(ms)
	return nil
}

type gpsMsg struct {
	TS       *wireTS  `json:"ts"`
	Seq      *uint64  `json:"seq"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	SpeedKmh *float64 `json:"speed_kmh"`
	Heading  *float64 `json:"heading"`
	Sats     *int     `json:"sats"`
	Valid    *bool    `json:"valid"`
}

type sensorsMsg struct {
	TS     *wireTS  `json:"ts"`
	Seq    *uint64  `json:"seq"`
	Cover  *string  `json:"cover"`
	Body   *string  `json:"body"`
	LoadKg *float64 `json:"load_kg"`
}

type rainMsg struct {
	TS        *wireTS  `json:"ts"`
	Seq       *uint64  `json:"seq"`
	MM        *float64 `json:"mm"`
	IntervalS *float64 `json:"interval_s"`
}

type depthMsg struct {
	TS      *wireTS  `json:"ts"`
	Seq     *uint64  `json:"seq"`
	DepthCM *float64 `json:"depth_cm"`
}

// Limits of the wire contract's value ranges (docs/protocol.md).
const (
	maxSeq        = 1<<53 - 1 // exact in every JSON implementation
	maxSpeedKmh   = 250
	maxSats       = 64
	maxLoadKg     = 100_000
	maxIntervalS  = 86_400
	maxRainPerMin = 10.0 // mm/min: 2.5× a tipping-bucket gauge's range, 3× Zhengzhou's record hour
	maxDepthCM    = 1_000
)

// Decode parses and range-checks the JSON payload of one message of kind k
// into a Record (Device and Received are left for the caller). Every failure
// is a *Rejection saying which field is wrong and why.
//
// Well-formed payloads take decodeFast, a scanner without reflection or
// allocations; anything it is not sure about takes decodeSlow. Both give the
// same result for every input (FuzzDecodeFast checks it).
func Decode(k telemetry.Kind, payload []byte) (telemetry.Record, error) {
	if rec, handled, err := decodeFast(k, payload); handled {
		return rec, err
	}
	return decodeSlow(k, payload)
}

// decodeSlow is Decode by encoding/json (decodeStrict and the fill*
// functions): the reference for decodeFast, and the path that produces every
// rejection decodeFast leaves to it.
func decodeSlow(k telemetry.Kind, payload []byte) (telemetry.Record, error) {
	rec := telemetry.Record{Kind: k}
	var err error
	switch k {
	case telemetry.KindGPS:
		var m gpsMsg
		if err = decodeStrict(payload, &m); err == nil {
			err = fillGPS(&rec, &m)
		}
	case telemetry.KindSensors:
		var m sensorsMsg
		if err = decodeStrict(payload, &m); err == nil {
			err = fillSensors(&rec, &m)
		}
	case telemetry.KindRain:
		var m rainMsg
		if err = decodeStrict(payload, &m); err == nil {
			err = fillRain(&rec, &m)
		}
	case telemetry.KindDepth:
		var m depthMsg
		if err = decodeStrict(payload, &m); err == nil {
			err = fillDepth(&rec, &m)
		}
	default:
		err = reject(ReasonUnknownTopic, "kind %d", k)
	}
	return rec, err
}

func decodeStrict(payload []byte, v any) error {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return reject(ReasonMalformedJSON, "payload is not a JSON object: %s", truncate(payload, 60))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return classify(trimmed, err)
	}
	if dec.More() {
		return reject(ReasonMalformedJSON, "data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return reject(ReasonMalformedJSON, "data after the JSON object")
	}
	return nil
}

// nonFiniteToken reports whether a NaN or Infinity literal starts near the
// byte offset where the JSON decoder gave up.
func nonFiniteToken(payload []byte, offset int) bool {
	lo := max(0, offset-10)
	window := payload[lo:min(len(payload), offset+10)]
	return bytes.Contains(window, []byte("NaN")) || bytes.Contains(window, []byte("Infinity"))
}

func classify(payload []byte, err error) error {
	var rej *Rejection
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &rej):
		return rej
	case errors.As(err, &syn):
		// JSON has no NaN or Infinity; devices that print them produce a
		// syntax error at that token, which deserves the clearer reason.
		if nonFiniteToken(payload, int(syn.Offset)) {
			return reject(ReasonNotFinite, "NaN or Infinity at byte %d: JSON numbers must be finite", syn.Offset)
		}
		return reject(ReasonMalformedJSON, "%v at byte %d", syn, syn.Offset)
	case errors.As(err, &typ):
		if num, ok := strings.CutPrefix(typ.Value, "number "); ok {
			if f, perr := strconv.ParseFloat(num, 64); perr != nil && math.IsInf(f, 0) {
				return reject(ReasonNotFinite, "%s: %s overflows to infinity", typ.Field, num)
			}
			return reject(ReasonWrongType, "%s: %s does not fit %s", typ.Field, num, typ.Type)
		}
		return reject(ReasonWrongType, "%s: got %s, want %s", typ.Field, typ.Value, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return reject(ReasonUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return reject(ReasonMalformedJSON, "truncated JSON")
	}
	return reject(ReasonMalformedJSON, "%v", err)
}

func header(rec *telemetry.Record, ts *wireTS, seq *uint64) error {
	if ts == nil {
		return reject(ReasonMissingField, "ts is required")
	}
	if seq == nil {
		return reject(ReasonMissingField, "seq is required")
	}
	if *seq > maxSeq {
		return reject(ReasonOutOfRange, "seq %d above 2^53-1", *seq)
	}
	rec.TS, rec.Seq = ts.t, *seq
	return nil
}

func fillGPS(rec *telemetry.Record, m *gpsMsg) error {
	if err := header(rec, m.TS, m.Seq); err != nil {
		return err
	}
	switch {
	case m.Lat == nil:
		return reject(ReasonMissingField, "lat is required")
	case m.Lon == nil:
		return reject(ReasonMissingField, "lon is required")
	case m.SpeedKmh == nil:
		return reject(ReasonMissingField, "speed_kmh is required")
	case m.Heading == nil:
		return reject(ReasonMissingField, "heading is required")
	}
	if m.Sats == nil {
		return reject(ReasonMissingField, "sats is required")
	}
	if m.Valid == nil {
		return reject(ReasonMissingField, "valid is required")
	}
	switch {
	case !inRange(*m.Lat, -90, 90):
		return reject(ReasonOutOfRange, "lat %g outside [-90, 90]", *m.Lat)
	case !inRange(*m.Lon, -180, 180):
		return reject(ReasonOutOfRange, "lon %g outside [-180, 180]", *m.Lon)
	case !inRange(*m.SpeedKmh, 0, maxSpeedKmh):
		return reject(ReasonOutOfRange, "speed_kmh %g outside [0, %d]", *m.SpeedKmh, maxSpeedKmh)
	case !inRange(*m.Heading, 0, 360) || *m.Heading == 360:
		return reject(ReasonOutOfRange, "heading %g outside [0, 360)", *m.Heading)
	case *m.Sats < 0 || *m.Sats > maxSats:
		return reject(ReasonOutOfRange, "sats %d outside [0, %d]", *m.Sats, maxSats)
	}
	rec.Fix = telemetry.Fix{Lat: *m.Lat, Lon: *m.Lon, SpeedKmh: *m.SpeedKmh, Heading: *m.Heading,
		Sats: *m.Sats, Valid: *m.Valid}
	return nil
}

func fillSensors(rec *telemetry.Record, m *sensorsMsg) error {
	if err := header(rec, m.TS, m.Seq); err != nil {
		return err
	}
	if m.Cover == nil {
		return reject(ReasonMissingField, "cover is required")
	}
	if m.Body == nil {
		return reject(ReasonMissingField, "body is required")
	}
	cover, ok := telemetry.ParseCover(*m.Cover)
	if !ok {
		return reject(ReasonOutOfRange, "cover %q: want closed, open or fault", truncate([]byte(*m.Cover), 20))
	}
	body, ok := telemetry.ParseBody(*m.Body)
	if !ok {
		return reject(ReasonOutOfRange, "body %q: want down or raised", truncate([]byte(*m.Body), 20))
	}
	rec.Sensors = telemetry.SensorState{Cover: cover, Body: body}
	if m.LoadKg != nil {
		if !inRange(*m.LoadKg, 0, maxLoadKg) {
			return reject(ReasonOutOfRange, "load_kg %g outside [0, %d]", *m.LoadKg, maxLoadKg)
		}
		rec.Sensors.LoadKg, rec.Sensors.HasLoad = *m.LoadKg, true
	}
	return nil
}

func fillRain(rec *telemetry.Record, m *rainMsg) error {
	if err := header(rec, m.TS, m.Seq); err != nil {
		return err
	}
	if m.MM == nil {
		return reject(ReasonMissingField, "mm is required")
	}
	if m.IntervalS == nil {
		return reject(ReasonMissingField, "interval_s is required")
	}
	iv, mm := *m.IntervalS, *m.MM
	switch {
	case !inRange(iv, 0, maxIntervalS) || iv == 0:
		return reject(ReasonOutOfRange, "interval_s %g outside (0, %d]", iv, maxIntervalS)
	case !inRange(mm, 0, math.Inf(1)):
		return reject(ReasonOutOfRange, "mm %g is negative", mm)
	case mm > maxRainPerMin*math.Max(iv, 60)/60:
		return reject(ReasonOutOfRange, "mm %g in %gs is over %g mm/min, beyond any gauge", mm, iv, maxRainPerMin)
	}
	rec.Rain = telemetry.RainReading{MM: mm, IntervalS: iv}
	return nil
}

func fillDepth(rec *telemetry.Record, m *depthMsg) error {
	if err := header(rec, m.TS, m.Seq); err != nil {
		return err
	}
	if m.DepthCM == nil {
		return reject(ReasonMissingField, "depth_cm is required")
	}
	if !inRange(*m.DepthCM, 0, maxDepthCM) {
		return reject(ReasonOutOfRange, "depth_cm %g outside [0, %d]", *m.DepthCM, maxDepthCM)
	}
	rec.Depth = telemetry.DepthReading{DepthCM: *m.DepthCM}
	return nil
}

// inRange reports lo <= v <= hi; NaN is never in range.
func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}
