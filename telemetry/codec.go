package telemetry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// codecVersion is the first byte of every encoded record. A reader refuses
// versions it does not know rather than guessing.
const codecVersion = 1

const (
	flagLate    = 1 << 0
	flagValid   = 1 << 1
	flagHasLoad = 1 << 2
)

// ErrCorrupt is wrapped by UnmarshalBinary for any input it cannot decode.
var ErrCorrupt = errors.New("telemetry: corrupt record encoding")

// AppendBinary appends the record's compact binary encoding to b and returns
// the extended slice. The encoding is stable: records written by one version
// of urbanwatch are read by later ones.
func (r *Record) AppendBinary(b []byte) []byte {
	var flags byte
	if r.Late {
		flags |= flagLate
	}
	if r.Fix.Valid {
		flags |= flagValid
	}
	if r.Sensors.HasLoad {
		flags |= flagHasLoad
	}
	b = append(b, codecVersion, byte(r.Kind), flags)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.TS.UnixNano())
	b = binary.AppendVarint(b, r.Received.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(r.Device)))
	b = append(b, r.Device...)
	switch r.Kind {
	case KindGPS:
		b = appendFloat(b, r.Fix.Lat)
		b = appendFloat(b, r.Fix.Lon)
		b = appendFloat(b, r.Fix.SpeedKmh)
		b = appendFloat(b, r.Fix.Heading)
		b = binary.AppendUvarint(b, uint64(r.Fix.Sats))
	case KindSensors:
		b = append(b, byte(r.Sensors.Cover), byte(r.Sensors.Body))
		b = appendFloat(b, r.Sensors.LoadKg)
	case KindRain:
		b = appendFloat(b, r.Rain.MM)
		b = appendFloat(b, r.Rain.IntervalS)
	case KindDepth:
		b = appendFloat(b, r.Depth.DepthCM)
	}
	return b
}

// UnmarshalBinary decodes one record produced by AppendBinary, replacing r.
// It returns an error wrapping ErrCorrupt for truncated or unknown input and
// never panics.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	version, kind, flags := d.byte(), Kind(d.byte()), d.byte()
	if d.err == nil && version != codecVersion {
		return fmt.Errorf("%w: version %d", ErrCorrupt, version)
	}
	*r = Record{Kind: kind}
	r.Late = flags&flagLate != 0
	r.Seq = d.uvarint()
	r.TS = time.Unix(0, d.varint())
	r.Received = time.Unix(0, d.varint())
	n := d.uvarint()
	r.Device = string(d.bytes(n))
	switch kind {
	case KindGPS:
		r.Fix = Fix{Lat: d.float(), Lon: d.float(), SpeedKmh: d.float(), Heading: d.float(),
			Sats: int(d.uvarint()), Valid: flags&flagValid != 0}
	case KindSensors:
		r.Sensors = SensorState{Cover: Cover(d.byte()), Body: Body(d.byte()), LoadKg: d.float(),
			HasLoad: flags&flagHasLoad != 0}
	case KindRain:
		r.Rain = RainReading{MM: d.float(), IntervalS: d.float()}
	case KindDepth:
		r.Depth = DepthReading{DepthCM: d.float()}
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: kind %d", ErrCorrupt, kind)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// decoder reads from b, remembering the first error so callers check once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail("string")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail("float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}
