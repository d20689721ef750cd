package jt808

import (
	"bytes"
	"encoding/binary"
	"time"
)

// chinaTime is GMT+8, the zone of every JT/T 808 timestamp.
var chinaTime = time.FixedZone("GMT+8", 8*3600)

// Status bits of a location report that the mapping reads.
const (
	StatusPositioned = 1 << 1 // bit 1: the fix is valid
	StatusSouth      = 1 << 2 // bit 2: latitude is south
	StatusWest       = 1 << 3 // bit 3: longitude is west
	statusLoadShift  = 8      // bits 8–9: load state
)

// Additional information ids the mapping reads besides a profile's.
const (
	ExtraSatellites byte = 0x31 // BYTE: GNSS satellites in view
)

// LoadState is status bits 8–9 of a location report.
type LoadState uint8

// Load states.
const (
	LoadEmpty    LoadState = 0 // 00
	LoadHalf     LoadState = 1 // 01
	LoadReserved LoadState = 2 // 10
	LoadFull     LoadState = 3 // 11
)

// Extra is one additional-information item of a location report.
type Extra struct {
	ID   byte
	Data []byte
}

// Location is a location report body (0x0200, and each item of 0x0704).
type Location struct {
	Alarm, Status uint32
	// Lat and Lon are degrees, negative south and west (from the status
	// bits), at the protocol's 10⁻⁶ resolution.
	Lat, Lon  float64
	AltitudeM uint16
	SpeedKmh  float64 // the field is 0.1 km/h
	Heading   uint16  // degrees clockwise from north, 0–359
	Time      time.Time
	Extras    []Extra
}

// locationBaseLen is the fixed part of a location report.
const locationBaseLen = 4 + 4 + 4 + 4 + 2 + 2 + 2 + 6

// Valid reports status bit 1, the terminal's positioned flag.
func (l *Location) Valid() bool { return l.Status&StatusPositioned != 0 }

// LoadState returns status bits 8–9.
func (l *Location) LoadState() LoadState { return LoadState(l.Status >> statusLoadShift & 3) }

// Extra returns the data of the first additional-information item id.
func (l *Location) Extra(id byte) ([]byte, bool) {
	for _, e := range l.Extras {
		if e.ID == id {
			return e.Data, true
		}
	}
	return nil, false
}

// ParseLocation decodes a location report body. The extras alias b.
func ParseLocation(b []byte) (Location, error) {
	var l Location
	if len(b) < locationBaseLen {
		return l, frameErr(ReasonBody, "location report of %d bytes, at least %d", len(b), locationBaseLen)
	}
	l.Alarm = binary.BigEndian.Uint32(b[0:])
	l.Status = binary.BigEndian.Uint32(b[4:])
	l.Lat = float64(binary.BigEndian.Uint32(b[8:])) / 1e6
	l.Lon = float64(binary.BigEndian.Uint32(b[12:])) / 1e6
	if l.Status&StatusSouth != 0 {
		l.Lat = -l.Lat
	}
	if l.Status&StatusWest != 0 {
		l.Lon = -l.Lon
	}
	l.AltitudeM = binary.BigEndian.Uint16(b[16:])
	l.SpeedKmh = float64(binary.BigEndian.Uint16(b[18:])) / 10
	l.Heading = binary.BigEndian.Uint16(b[20:])
	t, err := ParseTime(b[22:28])
	if err != nil {
		return l, err
	}
	l.Time = t
	for p := locationBaseLen; p < len(b); {
		if p+2 > len(b) {
			return l, frameErr(ReasonBody, "additional information at offset %d: truncated id and length", p)
		}
		id, n := b[p], int(b[p+1])
		if p+2+n > len(b) {
			return l, frameErr(ReasonBody, "additional information 0x%02X: length %d past the end of the body", id, n)
		}
		l.Extras = append(l.Extras, Extra{ID: id, Data: b[p+2 : p+2+n]})
		p += 2 + n
	}
	return l, nil
}

// AppendLocation appends the body of l to dst (Lat and Lon by absolute
// value; the caller sets the south and west status bits).
func AppendLocation(dst []byte, l *Location) []byte {
	dst = binary.BigEndian.AppendUint32(dst, l.Alarm)
	dst = binary.BigEndian.AppendUint32(dst, l.Status)
	dst = binary.BigEndian.AppendUint32(dst, uint32(roundAbs(l.Lat*1e6)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(roundAbs(l.Lon*1e6)))
	dst = binary.BigEndian.AppendUint16(dst, l.AltitudeM)
	dst = binary.BigEndian.AppendUint16(dst, uint16(roundAbs(l.SpeedKmh*10)))
	dst = binary.BigEndian.AppendUint16(dst, l.Heading)
	dst = AppendTime(dst, l.Time)
	for _, e := range l.Extras {
		dst = append(dst, e.ID, byte(len(e.Data)))
		dst = append(dst, e.Data...)
	}
	return dst
}

func roundAbs(v float64) float64 {
	if v < 0 {
		v = -v
	}
	return v + 0.5
}

// ParseTime decodes BCD[6] YYMMDDhhmmss in GMT+8 (years 2000–2099).
func ParseTime(b []byte) (time.Time, error) {
	if len(b) != 6 {
		return time.Time{}, frameErr(ReasonBody, "time of %d bytes, want 6", len(b))
	}
	var v [6]int
	for i, c := range b {
		hi, lo := int(c>>4), int(c&0x0F)
		if hi > 9 || lo > 9 {
			return time.Time{}, frameErr(ReasonBCD, "time byte %d is 0x%02X, not BCD", i, c)
		}
		v[i] = hi*10 + lo
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}, frameErr(ReasonBody, "time %02d%02d%02d%02d%02d%02d is not a date and time", v[0], v[1], v[2], v[3], v[4], v[5])
	}
	t := time.Date(2000+v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, chinaTime)
	if t.Day() != v[2] {
		return time.Time{}, frameErr(ReasonBody, "time %02d-%02d-%02d is not a date", v[0], v[1], v[2])
	}
	return t, nil
}

// AppendTime appends t, in GMT+8 and truncated to the second, as BCD[6].
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.In(chinaTime)
	for _, n := range []int{t.Year() % 100, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()} {
		dst = append(dst, byte(n/10)<<4|byte(n%10))
	}
	return dst
}

// Batch is a batch upload of stored locations (0x0704).
type Batch struct {
	// Type is 0 for a normal batch, 1 for blind-area back-fill (points
	// stored while the terminal had no network).
	Type  byte
	Items []Location
}

// ParseBatch decodes a 0x0704 body: count, type, then count items of a
// length and a location report.
func ParseBatch(b []byte) (Batch, error) {
	var out Batch
	if len(b) < 3 {
		return out, frameErr(ReasonBody, "batch of %d bytes, at least 3", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	out.Type = b[2]
	if out.Type > 1 {
		return out, frameErr(ReasonBody, "batch type %d, want 0 (normal) or 1 (blind area)", out.Type)
	}
	if n == 0 {
		return out, frameErr(ReasonBody, "batch of 0 items")
	}
	p := 3
	for i := 0; i < n; i++ {
		if p+2 > len(b) {
			return out, frameErr(ReasonBody, "batch item %d of %d: truncated length", i+1, n)
		}
		l := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+l > len(b) {
			return out, frameErr(ReasonBody, "batch item %d of %d: length %d past the end", i+1, n, l)
		}
		loc, err := ParseLocation(b[p : p+l])
		if err != nil {
			fe := err.(*FrameError)
			return out, frameErr(fe.Reason, "batch item %d of %d: %s", i+1, n, fe.Detail)
		}
		out.Items = append(out.Items, loc)
		p += l
	}
	if p != len(b) {
		return out, frameErr(ReasonBody, "batch of %d items: %d bytes left over", n, len(b)-p)
	}
	return out, nil
}

// AppendBatch appends a 0x0704 body of the locations to dst.
func AppendBatch(dst []byte, typ byte, locs []Location) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(locs)))
	dst = append(dst, typ)
	for i := range locs {
		at := len(dst)
		dst = append(dst, 0, 0)
		dst = AppendLocation(dst, &locs[i])
		binary.BigEndian.PutUint16(dst[at:], uint16(len(dst)-at-2))
	}
	return dst
}

// Register is what urbanwatch reads of a terminal registration (0x0100).
type Register struct {
	Province, City uint16
	Maker, Model   string // trailing NULs and spaces removed
	TerminalID     string
	PlateColor     byte
	Plate          []byte // GBK, as sent
}

// ParseRegister decodes a 0x0100 body in the layout of v: 2019 (maker 11,
// model 30, id 30 bytes), else 2013 (5, 20, 7) or, when shorter, 2011
// (5, 8, 7).
func ParseRegister(b []byte, v Version) (Register, error) {
	maker, model, id := 5, 20, 7
	switch {
	case v == V2019:
		maker, model, id = 11, 30, 30
	case len(b) < 4+5+20+7+1:
		model = 8
	}
	need := 4 + maker + model + id + 1
	var r Register
	if len(b) < need {
		return r, frameErr(ReasonBody, "registration of %d bytes, at least %d", len(b), need)
	}
	r.Province = binary.BigEndian.Uint16(b)
	r.City = binary.BigEndian.Uint16(b[2:])
	p := 4
	r.Maker = cString(b[p : p+maker])
	p += maker
	r.Model = cString(b[p : p+model])
	p += model
	r.TerminalID = cString(b[p : p+id])
	p += id
	r.PlateColor = b[p]
	r.Plate = bytes.TrimRight(b[p+1:], "\x00")
	return r, nil
}

// AppendRegister appends a 0x0100 body in the layout of v.
func AppendRegister(dst []byte, r Register, v Version) []byte {
	maker, model, id := 5, 20, 7
	if v == V2019 {
		maker, model, id = 11, 30, 30
	}
	dst = binary.BigEndian.AppendUint16(dst, r.Province)
	dst = binary.BigEndian.AppendUint16(dst, r.City)
	for _, f := range []struct {
		s string
		n int
	}{{r.Maker, maker}, {r.Model, model}, {r.TerminalID, id}} {
		b := make([]byte, f.n)
		copy(b, f.s)
		dst = append(dst, b...)
	}
	dst = append(dst, r.PlateColor)
	return append(dst, r.Plate...)
}

func cString(b []byte) string {
	return string(bytes.TrimRight(b, "\x00 "))
}

// ParseAuth decodes a 0x0102 body and returns the authentication code: the
// whole body in 2011/2013, a length-prefixed string (followed by IMEI and
// software version) in 2019.
func ParseAuth(b []byte, v Version) (string, error) {
	if v == V2019 {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", frameErr(ReasonBody, "2019 authentication of %d bytes: code length past the end", len(b))
		}
		return string(b[1 : 1+int(b[0])]), nil
	}
	return string(bytes.TrimRight(b, "\x00")), nil
}

// AppendAuth appends a 0x0102 body for code in the layout of v (in 2019 an
// empty IMEI and software version follow the code).
func AppendAuth(dst []byte, code string, v Version) []byte {
	if v == V2019 {
		dst = append(dst, byte(len(code)))
		dst = append(dst, code...)
		return append(dst, make([]byte, 15+20)...)
	}
	return append(dst, code...)
}

// AppendPlatformReply appends a 0x8001 body: the answered message's serial
// and id, and the result.
func AppendPlatformReply(dst []byte, serial, msgID uint16, result byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, serial)
	dst = binary.BigEndian.AppendUint16(dst, msgID)
	return append(dst, result)
}

// PlatformReply is a decoded 0x8001 body.
type PlatformReply struct {
	Serial, MsgID uint16
	Result        byte
}

// ParsePlatformReply decodes a 0x8001 body.
func ParsePlatformReply(b []byte) (PlatformReply, error) {
	if len(b) != 5 {
		return PlatformReply{}, frameErr(ReasonBody, "platform reply of %d bytes, want 5", len(b))
	}
	return PlatformReply{Serial: binary.BigEndian.Uint16(b), MsgID: binary.BigEndian.Uint16(b[2:]), Result: b[4]}, nil
}

// Registration results (0x8100).
const (
	RegisterOK              byte = 0
	RegisterVehicleTaken    byte = 1
	RegisterNoVehicle       byte = 2
	RegisterTerminalTaken   byte = 3
	RegisterUnknownTerminal byte = 4
)

// AppendRegisterReply appends a 0x8100 body: the registration's serial, the
// result and, on success, the authentication code.
func AppendRegisterReply(dst []byte, serial uint16, result byte, code string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, serial)
	dst = append(dst, result)
	if result == RegisterOK {
		dst = append(dst, code...)
	}
	return dst
}

// RegisterReply is a decoded 0x8100 body.
type RegisterReply struct {
	Serial   uint16
	Result   byte
	AuthCode string
}

// ParseRegisterReply decodes a 0x8100 body.
func ParseRegisterReply(b []byte) (RegisterReply, error) {
	if len(b) < 3 {
		return RegisterReply{}, frameErr(ReasonBody, "registration reply of %d bytes, at least 3", len(b))
	}
	return RegisterReply{Serial: binary.BigEndian.Uint16(b), Result: b[2], AuthCode: string(b[3:])}, nil
}
