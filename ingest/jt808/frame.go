// Package jt808 is a JT/T 808 gateway: a TCP server that speaks the Chinese
// road-transport terminal protocol (JT/T 808-2011, -2013 and -2019) that
// real muck-truck terminals use, and turns their location reports into the
// same JSON messages MQTT devices publish (docs/protocol.md), so that every
// report goes through ingest's validation, deduplication, spool-before-ack
// and rules exactly as an MQTT message does. docs/jt808.md is the contract.
//
// The package has three layers: frames (this file: 0x7E framing, 0x7D
// escapes, XOR checksum, the 2013 and 2019 headers, sub-packages), message
// bodies (message.go) and their mapping to telemetry records through a
// vendor profile (profile.go), and the server (server.go): one goroutine
// pair per connection, read deadlines, caps on frame size and connections.
package jt808

import (
	"encoding/binary"
	"fmt"
)

// Frame delimiters and escapes.
const (
	flag    = 0x7E // starts and ends every frame
	escape  = 0x7D // 0x7D 0x02 is 0x7E, 0x7D 0x01 is 0x7D
	escFlag = 0x02
	escEsc  = 0x01
)

// Message ids of the subset urbanwatch speaks (docs/jt808.md).
const (
	MsgTerminalReply    uint16 = 0x0001 // terminal general reply (to platform commands; none are sent)
	MsgHeartbeat        uint16 = 0x0002
	MsgDeregister       uint16 = 0x0003
	MsgRegister         uint16 = 0x0100
	MsgAuthenticate     uint16 = 0x0102
	MsgLocation         uint16 = 0x0200
	MsgBatchLocation    uint16 = 0x0704
	MsgPlatformReply    uint16 = 0x8001
	MsgRegisterReply    uint16 = 0x8100
	maxBodyLen                 = 1<<10 - 1 // the 10-bit length field
	attrLenMask                = 0x03FF
	attrEncryptShift           = 10
	attrEncryptMask            = 0x7 << attrEncryptShift
	attrSubPackage             = 1 << 13
	attrVersionFlag            = 1 << 14
	protocolVersion2019 byte   = 1
)

// Results of the platform general reply (0x8001).
const (
	ResultOK          byte = 0 // success / acknowledged
	ResultFailure     byte = 1 // not stored; send again later
	ResultBadMessage  byte = 2 // the message is wrong; sending it again will not help
	ResultUnsupported byte = 3 // the message id (or its encryption) is not supported
)

// Version is the header layout of a frame.
type Version uint8

// The two header layouts. 2011 and 2013 share one (their difference is in
// message bodies); 2019 adds a protocol version byte and a 10-byte phone.
const (
	V2013 Version = iota // JT/T 808-2011 and -2013: BCD[6] phone number
	V2019                // JT/T 808-2019: version flag (bit 14), version byte, BCD[10] phone number
)

// String names the version.
func (v Version) String() string {
	if v == V2019 {
		return "2019"
	}
	return "2013"
}

// phoneBytes is the length of the BCD phone number in the header.
func (v Version) phoneBytes() int {
	if v == V2019 {
		return 10
	}
	return 6
}

// headerLen is the header length without the sub-package fields.
func (v Version) headerLen() int {
	if v == V2019 {
		return 2 + 2 + 1 + 10 + 2
	}
	return 2 + 2 + 6 + 2
}

// Header is a frame's message header.
type Header struct {
	MsgID uint16
	// BodyLen is bits 0–9 of the attributes: the body length.
	BodyLen int
	// Encryption is bits 10–12 of the attributes: 0 plain, 1 RSA.
	Encryption uint8
	Version    Version
	// Phone is the terminal phone number as its BCD digits, leading zeros
	// included (12 digits in 2013 frames, 20 in 2019).
	Phone string
	// Serial is the terminal's flow serial number (wraps at 65,535).
	Serial uint16
	// SubPackage is bit 13: the body is package Index (1-based) of Total.
	SubPackage   bool
	Total, Index uint16
}

// Frame is one decoded frame: its header and its body (unescaped).
type Frame struct {
	Header
	Body []byte
}

// FrameError is why a frame or a message body was refused. Reason is a
// label value of urbanwatch_jt808_frames_rejected_total (docs/jt808.md).
type FrameError struct {
	Reason string
	Detail string
}

// Error implements error.
func (e *FrameError) Error() string { return e.Reason + ": " + e.Detail }

func frameErr(reason, format string, args ...any) *FrameError {
	return &FrameError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reasons a frame is rejected, the label values of
// urbanwatch_jt808_frames_rejected_total.
const (
	ReasonChecksum   = "checksum"     // XOR check code does not match
	ReasonEscape     = "escape"       // 0x7D not followed by 0x01 or 0x02, or a bare 0x7E inside
	ReasonLength     = "length"       // too short for its header, or the body length field disagrees
	ReasonVersion    = "version"      // 2019 version byte other than 1
	ReasonOversized  = "oversized"    // longer than the frame cap, or a reassembled message over its cap
	ReasonBCD        = "bcd"          // phone number or time digits that are not decimal
	ReasonSubPackage = "subpackage"   // sub-package index 0, past the total, or not fitting its message
	ReasonGarbage    = "garbage"      // bytes outside any 0x7E … 0x7E frame
	ReasonBody       = "bad_body"     // a message body that does not parse
	ReasonEncrypted  = "encrypted"    // an encrypted body (unsupported)
	ReasonAuth       = "unauthorized" // a report from a terminal that has not authenticated, or names another phone
)

// FrameReasons lists every rejection reason, so the counters start at zero.
var FrameReasons = []string{ReasonChecksum, ReasonEscape, ReasonLength, ReasonVersion, ReasonOversized,
	ReasonBCD, ReasonSubPackage, ReasonGarbage, ReasonBody, ReasonEncrypted, ReasonAuth}

// Unescape appends the unescaped content of an escaped frame body (the
// bytes between the two 0x7E flags) to dst.
func Unescape(dst, src []byte) ([]byte, error) {
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case flag:
			return dst, frameErr(ReasonEscape, "bare 0x7E at offset %d inside a frame", i)
		case escape:
			if i+1 >= len(src) {
				return dst, frameErr(ReasonEscape, "0x7D at the end of the frame")
			}
			i++
			switch src[i] {
			case escFlag:
				dst = append(dst, flag)
			case escEsc:
				dst = append(dst, escape)
			default:
				return dst, frameErr(ReasonEscape, "0x7D followed by 0x%02X at offset %d", src[i], i)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// Escape appends src with 0x7E and 0x7D escaped to dst.
func Escape(dst, src []byte) []byte {
	for _, c := range src {
		switch c {
		case flag:
			dst = append(dst, escape, escFlag)
		case escape:
			dst = append(dst, escape, escEsc)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Checksum is the XOR of b's bytes.
func Checksum(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// DecodeFrame decodes one frame, flags included (0x7E … 0x7E). The returned
// frame's Body aliases a fresh buffer, not raw. Every failure is a
// *FrameError.
func DecodeFrame(raw []byte) (*Frame, error) {
	if len(raw) < 2 || raw[0] != flag || raw[len(raw)-1] != flag {
		return nil, frameErr(ReasonLength, "a frame starts and ends with 0x7E (%d bytes)", len(raw))
	}
	data, err := Unescape(make([]byte, 0, len(raw)), raw[1:len(raw)-1])
	if err != nil {
		return nil, err
	}
	return decodeUnescaped(data)
}

// decodeUnescaped decodes header, body and check code of an unescaped frame.
func decodeUnescaped(data []byte) (*Frame, error) {
	if len(data) < V2013.headerLen()+1 {
		return nil, frameErr(ReasonLength, "%d bytes after unescaping, a header and check code need at least %d", len(data), V2013.headerLen()+1)
	}
	sum := data[len(data)-1]
	data = data[:len(data)-1]
	if got := Checksum(data); got != sum {
		return nil, frameErr(ReasonChecksum, "check code 0x%02X, computed 0x%02X", sum, got)
	}
	var f Frame
	f.MsgID = binary.BigEndian.Uint16(data[0:2])
	attr := binary.BigEndian.Uint16(data[2:4])
	f.BodyLen = int(attr & attrLenMask)
	f.Encryption = uint8((attr & attrEncryptMask) >> attrEncryptShift)
	f.SubPackage = attr&attrSubPackage != 0
	p := 4
	if attr&attrVersionFlag != 0 {
		f.Version = V2019
		if len(data) < V2019.headerLen() {
			return nil, frameErr(ReasonLength, "%d bytes, a 2019 header needs %d", len(data), V2019.headerLen())
		}
		if v := data[p]; v != protocolVersion2019 {
			return nil, frameErr(ReasonVersion, "2019 protocol version %d, want %d", v, protocolVersion2019)
		}
		p++
	}
	n := f.Version.phoneBytes()
	phone, err := bcdDigits(data[p : p+n])
	if err != nil {
		return nil, frameErr(ReasonBCD, "phone number: %v", err)
	}
	f.Phone = phone
	p += n
	f.Serial = binary.BigEndian.Uint16(data[p:])
	p += 2
	if f.SubPackage {
		if len(data) < p+4 {
			return nil, frameErr(ReasonLength, "%d bytes, a sub-package header needs %d", len(data), p+4)
		}
		f.Total = binary.BigEndian.Uint16(data[p:])
		f.Index = binary.BigEndian.Uint16(data[p+2:])
		p += 4
		if f.Total == 0 || f.Index == 0 || f.Index > f.Total {
			return nil, frameErr(ReasonSubPackage, "package %d of %d", f.Index, f.Total)
		}
	}
	if got := len(data) - p; got != f.BodyLen {
		return nil, frameErr(ReasonLength, "body length field %d, body has %d bytes", f.BodyLen, got)
	}
	f.Body = data[p:]
	return &f, nil
}

// AppendFrame appends the escaped frame of h and body to dst: flags,
// header (h.BodyLen is taken from body), body, check code. h.Phone is
// left-padded with zeros to the version's length; it must be decimal digits.
func AppendFrame(dst []byte, h Header, body []byte) ([]byte, error) {
	if len(body) > maxBodyLen {
		return dst, fmt.Errorf("jt808: body of %d bytes, limit %d (use sub-packages)", len(body), maxBodyLen)
	}
	raw := make([]byte, 0, h.Version.headerLen()+4+len(body)+1)
	attr := uint16(len(body)) | uint16(h.Encryption&0x7)<<attrEncryptShift
	if h.SubPackage {
		attr |= attrSubPackage
	}
	if h.Version == V2019 {
		attr |= attrVersionFlag
	}
	raw = binary.BigEndian.AppendUint16(raw, h.MsgID)
	raw = binary.BigEndian.AppendUint16(raw, attr)
	if h.Version == V2019 {
		raw = append(raw, protocolVersion2019)
	}
	var err error
	if raw, err = appendBCD(raw, h.Phone, h.Version.phoneBytes()); err != nil {
		return dst, fmt.Errorf("jt808: phone %q: %w", h.Phone, err)
	}
	raw = binary.BigEndian.AppendUint16(raw, h.Serial)
	if h.SubPackage {
		raw = binary.BigEndian.AppendUint16(raw, h.Total)
		raw = binary.BigEndian.AppendUint16(raw, h.Index)
	}
	raw = append(raw, body...)
	raw = append(raw, Checksum(raw))
	dst = append(dst, flag)
	dst = Escape(dst, raw)
	return append(dst, flag), nil
}

// bcdDigits returns the decimal digits of packed BCD b.
func bcdDigits(b []byte) (string, error) {
	out := make([]byte, 0, 2*len(b))
	for i, c := range b {
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return "", fmt.Errorf("byte %d is 0x%02X, not two decimal digits", i, c)
		}
		out = append(out, '0'+hi, '0'+lo)
	}
	return string(out), nil
}

// appendBCD appends digits as n bytes of packed BCD, left-padded with zeros.
func appendBCD(dst []byte, digits string, n int) ([]byte, error) {
	if len(digits) > 2*n {
		return dst, fmt.Errorf("%d digits, at most %d fit", len(digits), 2*n)
	}
	padded := make([]byte, 2*n)
	for i := range padded {
		padded[i] = '0'
	}
	copy(padded[2*n-len(digits):], digits)
	for i := 0; i < 2*n; i += 2 {
		hi, lo := padded[i]-'0', padded[i+1]-'0'
		if hi > 9 || lo > 9 {
			return dst, fmt.Errorf("not decimal digits")
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, nil
}

// NormalizePhone is the identity of a terminal phone number: its digits
// without leading zeros, so that a 2013 terminal's 12 digits and the same
// number in a 2019 terminal's 20 digits name one terminal.
func NormalizePhone(digits string) string {
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	return digits
}
