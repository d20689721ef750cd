package ingest

import (
	"strconv"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// This file is Decode's fast path: a hand-written scanner for the payload
// objects of the four kinds that produces the same msg structs as
// decodeStrict (encoding/json) would, without reflection and without heap
// allocations for the payloads devices actually send, and then hands them to
// the same fill* functions, so range checks and their rejections live in one
// place.
//
// It is deliberately narrow. Whenever it meets anything whose encoding/json
// treatment it does not reproduce byte for byte — string escapes or non-ASCII
// bytes in strings, keys that are unknown, duplicated or only match up to
// case, null, a value of the wrong JSON type, a number strconv refuses, a ts
// wireTS would reject, whitespace other than JSON's four characters, data
// after the object, any syntax error — it reports "not handled" and Decode
// takes the encoding/json path, which then produces the rejection exactly as
// it always has.

// Field ids of the fast path: bit positions in fastKindFields and
// fastValues.seen.
const (
	fTS = iota
	fSeq
	fLat
	fLon
	fSpeedKmh
	fHeading
	fSats
	fValid
	fCover
	fBody
	fLoadKg
	fMM
	fIntervalS
	fDepthCM
	nFastFields
)

// fastKindFields is, per telemetry.Kind, the set of fields (1<<f) its msg
// struct defines; zero for kinds the fast path does not handle.
var fastKindFields = [...]uint16{
	telemetry.KindGPS: 1<<fTS | 1<<fSeq | 1<<fLat | 1<<fLon | 1<<fSpeedKmh | 1<<fHeading |
		1<<fSats | 1<<fValid,
	telemetry.KindSensors: 1<<fTS | 1<<fSeq | 1<<fCover | 1<<fBody | 1<<fLoadKg,
	telemetry.KindRain:    1<<fTS | 1<<fSeq | 1<<fMM | 1<<fIntervalS,
	telemetry.KindDepth:   1<<fTS | 1<<fSeq | 1<<fDepthCM,
}

// fastFieldOf returns the field id whose JSON name is exactly key, or -1.
// Only exact (case-sensitive) names are recognised: encoding/json would also
// match case-folded variants, and those are left to it.
func fastFieldOf(key []byte) int {
	switch string(key) { // no allocation: the compiler compares in place
	case "ts":
		return fTS
	case "seq":
		return fSeq
	case "lat":
		return fLat
	case "lon":
		return fLon
	case "speed_kmh":
		return fSpeedKmh
	case "heading":
		return fHeading
	case "sats":
		return fSats
	case "valid":
		return fValid
	case "cover":
		return fCover
	case "body":
		return fBody
	case "load_kg":
		return fLoadKg
	case "mm":
		return fMM
	case "interval_s":
		return fIntervalS
	case "depth_cm":
		return fDepthCM
	}
	return -1
}

// fastValues holds the fields the fast scanner found in one payload. A field
// is meaningful only when its bit is set in seen.
type fastValues struct {
	seen  uint16
	ts    wireTS
	seq   uint64
	num   [nFastFields]float64 // number fields, indexed by field id
	sats  int
	valid bool
	cover string
	body  string
}

// decodeFast is the fast path of Decode. When handled is true, rec and err
// are exactly what decodeSlow returns for the same k and payload (err is
// then nil or the *Rejection of a fill* range or presence check). When
// handled is false, rec and err are zero and the caller must use decodeSlow.
// It never retains payload.
func decodeFast(k telemetry.Kind, payload []byte) (rec telemetry.Record, handled bool, err error) {
	if int(k) >= len(fastKindFields) || fastKindFields[k] == 0 {
		return telemetry.Record{}, false, nil
	}
	var v fastValues
	if !v.scanObject(payload, fastKindFields[k]) {
		return telemetry.Record{}, false, nil
	}
	rec.Kind = k
	switch k {
	case telemetry.KindGPS:
		m := gpsMsg{TS: v.tsPtr(), Seq: v.seqPtr(), Lat: v.numPtr(fLat), Lon: v.numPtr(fLon),
			SpeedKmh: v.numPtr(fSpeedKmh), Heading: v.numPtr(fHeading)}
		if v.has(fSats) {
			m.Sats = &v.sats
		}
		if v.has(fValid) {
			m.Valid = &v.valid
		}
		err = fillGPS(&rec, &m)
	case telemetry.KindSensors:
		m := sensorsMsg{TS: v.tsPtr(), Seq: v.seqPtr(), LoadKg: v.numPtr(fLoadKg)}
		if v.has(fCover) {
			m.Cover = &v.cover
		}
		if v.has(fBody) {
			m.Body = &v.body
		}
		err = fillSensors(&rec, &m)
	case telemetry.KindRain:
		m := rainMsg{TS: v.tsPtr(), Seq: v.seqPtr(), MM: v.numPtr(fMM), IntervalS: v.numPtr(fIntervalS)}
		err = fillRain(&rec, &m)
	case telemetry.KindDepth:
		m := depthMsg{TS: v.tsPtr(), Seq: v.seqPtr(), DepthCM: v.numPtr(fDepthCM)}
		err = fillDepth(&rec, &m)
	}
	return rec, true, err
}

func (v *fastValues) has(f int) bool { return v.seen&(1<<f) != 0 }

// tsPtr returns the ts field as decodeStrict would leave it: nil if absent.
func (v *fastValues) tsPtr() *wireTS {
	if !v.has(fTS) {
		return nil
	}
	return &v.ts
}

// seqPtr returns the seq field, nil if absent.
func (v *fastValues) seqPtr() *uint64 {
	if !v.has(fSeq) {
		return nil
	}
	return &v.seq
}

// numPtr returns the number field f, nil if absent.
func (v *fastValues) numPtr(f int) *float64 {
	if !v.has(f) {
		return nil
	}
	return &v.num[f]
}

// scanObject parses payload as exactly one JSON object, surrounded by
// nothing but JSON whitespace, whose keys are distinct members of allowed.
// It reports false, with v in an unspecified state, for anything else or
// anything it is not sure encoding/json decodes to the same values.
func (v *fastValues) scanObject(b []byte, allowed uint16) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		key, j, ok := scanPlainString(b, i)
		if !ok {
			return false
		}
		f := fastFieldOf(key)
		if f < 0 || allowed&(1<<f) == 0 || v.has(f) {
			return false // unknown, case-folded or duplicate key
		}
		v.seen |= 1 << f
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		if i, ok = v.scanValue(f, b, skipWS(b, i+1)); !ok {
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return skipWS(b, i+1) == len(b)
		case ',':
			i = skipWS(b, i+1)
		default:
			return false
		}
	}
}

// scanValue parses the value of field f starting at b[i] and stores it in
// v, returning the index after it. It accepts only values encoding/json
// stores without error into f's msg field type, with the same result. The
// caller checks what follows the value, so "12a" or "truex" fail there.
func (v *fastValues) scanValue(f int, b []byte, i int) (int, bool) {
	switch f {
	case fTS:
		if i < len(b) && b[i] == '"' {
			s, j, ok := scanPlainString(b, i)
			if !ok {
				return 0, false
			}
			// The call wireTS.UnmarshalJSON makes on the same string.
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return 0, false
			}
			v.ts.t = t
			return j, true
		}
		num, integer, j, ok := scanNumber(b, i)
		if !ok || !integer {
			return 0, false
		}
		ms, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || ms < 0 || ms > 1<<52 { // wireTS's bounds
			return 0, false
		}
		v.ts.t = time.UnixMilli(ms)
		return j, true
	case fSeq:
		num, integer, j, ok := scanNumber(b, i)
		if !ok || !integer || num[0] == '-' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(num), 10, 64) // as encoding/json for uint64
		if err != nil {
			return 0, false
		}
		v.seq = n
		return j, true
	case fSats:
		num, integer, j, ok := scanNumber(b, i)
		if !ok || !integer {
			return 0, false
		}
		n, err := strconv.ParseInt(string(num), 10, 64) // as encoding/json for int
		if err != nil || int64(int(n)) != n {
			return 0, false
		}
		v.sats = int(n)
		return j, true
	case fValid:
		switch {
		case hasLiteral(b, i, "true"):
			v.valid = true
			return i + len("true"), true
		case hasLiteral(b, i, "false"):
			v.valid = false
			return i + len("false"), true
		}
		return 0, false
	case fCover, fBody:
		s, j, ok := scanPlainString(b, i)
		if !ok {
			return 0, false
		}
		if f == fCover {
			v.cover = internEnum(s)
		} else {
			v.body = internEnum(s)
		}
		return j, true
	}
	// Every other field is a float64.
	num, _, j, ok := scanNumber(b, i)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(num), 64) // as encoding/json for float64
	if err != nil {
		return 0, false // overflow: encoding/json reports it
	}
	v.num[f] = x
	return j, true
}

// internEnum returns s as a string, without allocating for the wire names of
// cover and body states.
func internEnum(s []byte) string {
	switch string(s) {
	case "closed":
		return "closed"
	case "open":
		return "open"
	case "fault":
		return "fault"
	case "down":
		return "down"
	case "raised":
		return "raised"
	}
	return string(s)
}

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace (space, tab, newline, carriage return), or len(b).
func skipWS(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return i
}

// hasLiteral reports whether b[i:] starts with lit.
func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanPlainString parses a JSON string at b[i] whose content is printable
// ASCII without escapes, the only strings whose decoded value is their raw
// bytes. It returns the content (aliasing b) and the index after the closing
// quote; ok is false for any other string, or if b[i] is not a quote.
func scanPlainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanNumber parses a number at b[i] by the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns its bytes
// (aliasing b), whether it has neither fraction nor exponent, and the index
// after it. Like the grammar, it stops at the first byte that cannot
// continue the number ("01" scans as "0"); the caller rejects what follows.
func scanNumber(b []byte, i int) (num []byte, integer bool, next int, ok bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return nil, false, 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return nil, false, 0, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			return nil, false, 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return nil, false, 0, false
		}
		i = j
	}
	return b[start:i], integer, i, true
}

// skipDigits returns the index of the first byte at or after i that is not
// an ASCII digit, or len(b).
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
