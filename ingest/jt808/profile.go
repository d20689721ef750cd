package jt808

import (
	"encoding/binary"
	"fmt"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// SourceKind says where a profile reads a sensor state from.
type SourceKind uint8

// Sources.
const (
	FromNone   SourceKind = iota // the terminal does not report it
	FromExtra                    // the first byte of an additional-information item
	FromStatus                   // one bit of the 32-bit status word
)

// Source is where a cover or body state is read from a location report.
type Source struct {
	Kind SourceKind
	// ID is the additional-information id (FromExtra, 0xE1–0xFF: the range
	// the standard leaves to vendors) or the status bit (FromStatus, 0–31).
	ID uint8
	// Invert, for a status bit, means a set bit is the resting state
	// (cover closed, body down) rather than the active one.
	Invert bool
}

// Profile maps a terminal model's vendor fields to cover, body and load.
// The standard has no fields for them; muck-truck terminals put them in
// custom status bits or in additional-information items ≥ 0xE1, and each
// model does it its own way (docs/jt808.md).
type Profile struct {
	// Cover from an item's first byte (0 closed, 1 open, 2 or more fault)
	// or a status bit (set: open).
	Cover Source
	// Body from an item's first byte (0 down, 1 raised) or a status bit
	// (set: raised).
	Body Source
	// LoadExtra, when not 0, is the additional-information id of the load
	// as a big-endian unsigned integer of 1 to 4 bytes, times LoadScale kg.
	LoadExtra uint8
	LoadScale float64
	// LoadStateKg, when set, gives a load for status bits 8–9 (empty, half,
	// full) when the report carries no LoadExtra item: for terminals with a
	// load-state switch but no weighing sensor. The reserved state 10 gives
	// no load.
	LoadStateKg *[3]float64
}

// DefaultProfile is the profile of terminals without one of their own:
// cover in item 0xE1, body in item 0xE2, load in kg in item 0xE3.
func DefaultProfile() Profile {
	return Profile{
		Cover:     Source{Kind: FromExtra, ID: 0xE1},
		Body:      Source{Kind: FromExtra, ID: 0xE2},
		LoadExtra: 0xE3,
		LoadScale: 1,
	}
}

// Validate checks a profile's ids and bits.
func (p *Profile) Validate() error {
	for _, s := range []struct {
		name string
		src  Source
	}{{"cover", p.Cover}, {"body", p.Body}} {
		switch s.src.Kind {
		case FromNone:
		case FromExtra:
			if s.src.ID < 0xE1 {
				return fmt.Errorf("%s: additional information 0x%02X: vendor items are 0xE1 to 0xFF", s.name, s.src.ID)
			}
		case FromStatus:
			if s.src.ID > 31 || reservedStatusBit(s.src.ID) {
				return fmt.Errorf("%s: status bit %d: want 0 to 31, not 1-3 or 8-9 (fix, hemisphere, load state)", s.name, s.src.ID)
			}
		default:
			return fmt.Errorf("%s: unknown source kind %d", s.name, s.src.Kind)
		}
	}
	if p.LoadExtra != 0 && p.LoadExtra < 0xE1 {
		return fmt.Errorf("load: additional information 0x%02X: vendor items are 0xE1 to 0xFF", p.LoadExtra)
	}
	if p.LoadExtra != 0 && !(p.LoadScale > 0) {
		return fmt.Errorf("load: scale must be positive")
	}
	return nil
}

func reservedStatusBit(b uint8) bool { return b >= 1 && b <= 3 || b == 8 || b == 9 }

// state reads a source: v is 0 for the resting state, 1 for the active
// one, 2 for a fault; ok is false when the report does not carry it.
func (s Source) state(l *Location) (v byte, ok bool) {
	switch s.Kind {
	case FromExtra:
		d, ok := l.Extra(s.ID)
		if !ok || len(d) == 0 {
			return 0, false
		}
		return min(d[0], 2), true
	case FromStatus:
		set := l.Status&(1<<s.ID) != 0
		if set != s.Invert {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Records maps one location report to the records it carries: always a GPS
// fix, and a sensors state when the profile finds both cover and body in
// it. Seq of both is the report's time in unix seconds (docs/jt808.md:
// terminals send one fix per second at most, and the time has one-second
// resolution, so it is unique per report and the same when a report is
// sent again).
func (p *Profile) Records(l *Location) (gps telemetry.Record, sens telemetry.Record, hasSensors bool) {
	seq := uint64(max(l.Time.Unix(), 0))
	gps = telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Seq: seq, TS: l.Time}}
	gps.Fix.Lat, gps.Fix.Lon = l.Lat, l.Lon
	gps.Fix.SpeedKmh = l.SpeedKmh
	gps.Fix.Heading = float64(l.Heading)
	gps.Fix.Valid = l.Valid()
	if d, ok := l.Extra(ExtraSatellites); ok && len(d) == 1 {
		gps.Fix.Sats = int(d[0])
	}
	cover, okC := p.Cover.state(l)
	body, okB := p.Body.state(l)
	if !okC || !okB || body > 1 {
		return gps, sens, false
	}
	sens = telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{Seq: seq, TS: l.Time}}
	sens.Sensors.Cover = [...]telemetry.Cover{telemetry.CoverClosed, telemetry.CoverOpen, telemetry.CoverFault}[cover]
	sens.Sensors.Body = [...]telemetry.Body{telemetry.BodyDown, telemetry.BodyRaised}[body]
	if d, ok := l.Extra(p.LoadExtra); p.LoadExtra != 0 && ok && len(d) >= 1 && len(d) <= 4 {
		var b [4]byte
		copy(b[4-len(d):], d)
		sens.Sensors.LoadKg = float64(binary.BigEndian.Uint32(b[:])) * p.LoadScale
		sens.Sensors.HasLoad = true
	} else if p.LoadStateKg != nil {
		switch l.LoadState() {
		case LoadEmpty:
			sens.Sensors.LoadKg, sens.Sensors.HasLoad = p.LoadStateKg[0], true
		case LoadHalf:
			sens.Sensors.LoadKg, sens.Sensors.HasLoad = p.LoadStateKg[1], true
		case LoadFull:
			sens.Sensors.LoadKg, sens.Sensors.HasLoad = p.LoadStateKg[2], true
		}
	}
	return gps, sens, true
}
