package jt808

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtures reads testdata/fixtures.txt: published frames by name.
func fixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	f, err := os.Open("testdata/fixtures.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		raw, err := hex.DecodeString(strings.TrimSpace(h))
		if !ok || err != nil {
			tb.Fatalf("fixture line %q: %v", line, err)
		}
		out[name] = raw
	}
	return out
}

func reasonOf(err error) string {
	var fe *FrameError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return ""
}

// TestPublishedFrames decodes frames from traccar's and xtream-codec's
// tests and checks what the projects' own assertions say of them.
func TestPublishedFrames(t *testing.T) {
	fx := fixtures(t)
	type want struct {
		msgID   uint16
		version Version
		phone   string
		serial  uint16
		reason  string // a frame refused as published
	}
	cases := map[string]want{
		"traccar-0100-register-2013":      {MsgRegister, V2013, "014130567872", 0x24, ""},
		"traccar-0100-register-2013b":     {MsgRegister, V2013, "013511221122", 5, ""},
		"traccar-0102-auth-2013":          {MsgAuthenticate, V2013, "013511221122", 6, ""},
		"traccar-0200-location-2013":      {reason: ReasonChecksum}, // its check code is 0xD0; the XOR is 0xF0 (traccar does not verify)
		"traccar-0200-location-2013b":     {MsgLocation, V2013, "001601285614", 2, ""},
		"traccar-0704-blind-2013":         {MsgBatchLocation, V2013, "013567777777", 0x07F5, ""},
		"traccar-0002-heartbeat-2013":     {MsgHeartbeat, V2013, "043048325465", 0xB7, ""},
		"xtream-0200-location-2019":       {MsgLocation, V2019, "00000000013912344329", 0, ""},
		"xtream-0704-batch-2019":          {MsgBatchLocation, V2019, "00000000013912344329", 0, ""},
		"xtream-8001-reply-2019":          {MsgPlatformReply, V2019, "00000000013912344329", 0, ""},
		"xtream-8100-register-reply-2019": {MsgRegisterReply, V2019, "00000000013912344329", 0, ""},
	}
	if len(cases) != len(fx) {
		t.Fatalf("%d fixtures, %d cases", len(fx), len(cases))
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			raw := fx[name]
			f, err := DecodeFrame(raw)
			if w.reason != "" {
				if reasonOf(err) != w.reason {
					t.Fatalf("err %v, want reason %s", err, w.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.MsgID != w.msgID || f.Version != w.version || f.Phone != w.phone || f.Serial != w.serial {
				t.Fatalf("header %+v, want %+v", f.Header, w)
			}
			// Our encoder writes the same bytes.
			again, err := AppendFrame(nil, f.Header, f.Body)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-encoded\n%x\nwant\n%x (%v)", again, raw, err)
			}
		})
	}
}

// TestPublishedBodies checks the bodies against the values the projects'
// tests assert.
func TestPublishedBodies(t *testing.T) {
	fx := fixtures(t)
	body := func(name string) *Frame {
		f, err := DecodeFrame(fx[name])
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	gmt8 := func(y, mo, d, h, mi, s int) time.Time { return time.Date(y, time.Month(mo), d, h, mi, s, 0, chinaTime) }

	// xtream-codec BuiltinMessage0200: alarm 111, status 22, latitude
	// 31234567, longitude 121987654, altitude 123, speed 66, direction 3,
	// 2025-01-29 22:33:44, extras {1: 12, 2: 100}. Status 22 has bit 2
	// (south) set, so the latitude is negative.
	l, err := ParseLocation(body("xtream-0200-location-2019").Body)
	if err != nil {
		t.Fatal(err)
	}
	if l.Alarm != 111 || l.Status != 22 || l.Lat != -31.234567 || l.Lon != 121.987654 || l.AltitudeM != 123 ||
		l.SpeedKmh != 6.6 || l.Heading != 3 || !l.Time.Equal(gmt8(2025, 1, 29, 22, 33, 44)) || !l.Valid() {
		t.Fatalf("location %+v", l)
	}
	if d, _ := l.Extra(0x01); !bytes.Equal(d, []byte{0, 0, 0, 12}) {
		t.Fatalf("mileage extra %x", d)
	}

	// traccar: 2017-01-17 10:04:42, 30 (signal) = 27, 31 (satellites) = 3.
	l, err = ParseLocation(body("traccar-0200-location-2013b").Body)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Time.Equal(gmt8(2017, 1, 17, 10, 4, 42)) || l.Lat != 6.152695 || l.Lon != 106.720495 || l.Valid() {
		t.Fatalf("location %+v", l)
	}
	if d, _ := l.Extra(ExtraSatellites); !bytes.Equal(d, []byte{3}) {
		t.Fatalf("satellites %x", d)
	}

	// traccar: a blind-area batch (type 1) of 8 positions.
	b, err := ParseBatch(body("traccar-0704-blind-2013").Body)
	if err != nil {
		t.Fatal(err)
	}
	if b.Type != 1 || len(b.Items) != 8 || !b.Items[0].Time.Equal(gmt8(2016, 5, 27, 9, 6, 24)) ||
		!b.Items[7].Time.Equal(gmt8(2016, 5, 27, 9, 10, 2)) {
		t.Fatalf("batch type %d, %d items, first %v", b.Type, len(b.Items), b.Items[0].Time)
	}
	// xtream-codec BuiltinMessage0704: 2 items, type 0, latitude 31000562
	// and 31000563, speed 33 and 67, direction 89 and 90.
	b, err = ParseBatch(body("xtream-0704-batch-2019").Body)
	if err != nil {
		t.Fatal(err)
	}
	if b.Type != 0 || len(b.Items) != 2 || b.Items[0].Lat != 31.000562 || b.Items[1].Lat != 31.000563 ||
		b.Items[0].SpeedKmh != 3.3 || b.Items[1].Heading != 90 {
		t.Fatalf("batch %+v", b)
	}

	r, err := ParseRegister(body("traccar-0100-register-2013b").Body, V2013)
	if err != nil || r.Maker != "70107" || r.Model != "HB-R03GBD" || r.TerminalID != "2366104" || r.PlateColor != 2 {
		t.Fatalf("register %+v %v", r, err)
	}
	code, err := ParseAuth(body("traccar-0102-auth-2013").Body, V2013)
	if err != nil || code != "authentication" {
		t.Fatalf("auth code %q %v", code, err)
	}
	pr, err := ParsePlatformReply(body("xtream-8001-reply-2019").Body)
	if err != nil || pr != (PlatformReply{Serial: 111, MsgID: 0x0200, Result: 0}) {
		t.Fatalf("platform reply %+v %v", pr, err)
	}
	rr, err := ParseRegisterReply(body("xtream-8100-register-reply-2019").Body)
	if err != nil || rr != (RegisterReply{Serial: 111, Result: 0, AuthCode: "ok..ok..ok"}) {
		t.Fatalf("register reply %+v %v", rr, err)
	}
}

// TestRepliesMatchPublished: the replies the gateway sends are byte for
// byte what xtream-codec's encoder produces for the same fields.
func TestRepliesMatchPublished(t *testing.T) {
	fx := fixtures(t)
	h := Header{MsgID: MsgPlatformReply, Version: V2019, Phone: "13912344329"}
	got, err := AppendFrame(nil, h, AppendPlatformReply(nil, 111, MsgLocation, ResultOK))
	if err != nil || !bytes.Equal(got, fx["xtream-8001-reply-2019"]) {
		t.Fatalf("0x8001 %x %v", got, err)
	}
	h.MsgID = MsgRegisterReply
	got, err = AppendFrame(nil, h, AppendRegisterReply(nil, 111, RegisterOK, "ok..ok..ok"))
	if err != nil || !bytes.Equal(got, fx["xtream-8100-register-reply-2019"]) {
		t.Fatalf("0x8100 %x %v", got, err)
	}
}

func TestEscaping(t *testing.T) {
	for _, c := range []struct{ plain, escaped string }{
		{"", ""},
		{"30 7e 08 7d 55", "30 7d 02 08 7d 01 55"}, // the standard's own example
		{"7e 7e", "7d 02 7d 02"},
		{"7d 02", "7d 01 02"},
		{"7d 01", "7d 01 01"},
		{"01 02 03", "01 02 03"},
	} {
		plain, _ := hex.DecodeString(strings.ReplaceAll(c.plain, " ", ""))
		esc, _ := hex.DecodeString(strings.ReplaceAll(c.escaped, " ", ""))
		if got := Escape(nil, plain); !bytes.Equal(got, esc) {
			t.Errorf("Escape(%s) = %x, want %x", c.plain, got, esc)
		}
		if got, err := Unescape(nil, esc); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("Unescape(%s) = %x, %v", c.escaped, got, err)
		}
	}
	for _, bad := range []string{"7d", "01 7d", "7d 03", "7d 00", "7d 7e", "01 7e 02"} {
		b, _ := hex.DecodeString(strings.ReplaceAll(bad, " ", ""))
		if _, err := Unescape(nil, b); reasonOf(err) != ReasonEscape {
			t.Errorf("Unescape(%s): %v, want an escape error", bad, err)
		}
	}
}

// frame builds a frame for tests, panicking on encoder errors.
func frame(h Header, body []byte) []byte {
	b, err := AppendFrame(nil, h, body)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeFrameErrors(t *testing.T) {
	good := frame(Header{MsgID: MsgHeartbeat, Phone: "13800000001", Serial: 7}, nil)
	good19 := frame(Header{MsgID: MsgHeartbeat, Version: V2019, Phone: "13800000001", Serial: 7}, nil)
	// reseal recomputes the check code of an unescaped frame and frames it.
	reseal := func(data []byte) []byte {
		data = append(data[:len(data):len(data)], Checksum(data))
		return append(Escape([]byte{flag}, data), flag)
	}
	inner := func(f []byte) []byte { d, _ := Unescape(nil, f[1:len(f)-1]); return d[:len(d)-1] }

	badSum := bytes.Clone(good)
	badSum[len(badSum)-2] ^= 0xFF
	v2 := inner(good19)
	v2[4] = 2
	lenMismatch := inner(good)
	lenMismatch[3] = 5 // says 5 body bytes, has 0
	badPhone := inner(good)
	badPhone[4] = 0xA1
	sub0 := append(inner(good)[:12:12], 0, 2, 0, 0) // sub-package 0 of 2
	sub0[2] |= attrSubPackage >> 8
	sub3 := append(inner(good)[:12:12], 0, 2, 0, 3) // package 3 of 2
	sub3[2] |= attrSubPackage >> 8
	subShort := inner(good)[:12:12] // sub-package bit without the fields
	subShort[2] |= attrSubPackage >> 8
	short19 := inner(good19)[:10]
	short19 = append(short19[:2:2], 0x40, 0, 1, 0, 0)

	for _, c := range []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"no flags", good[1 : len(good)-1], ReasonLength},
		{"only flags", []byte{flag, flag}, ReasonLength},
		{"checksum", badSum, ReasonChecksum},
		{"bad escape", []byte{flag, 0x01, escape, 0x05, flag}, ReasonEscape},
		{"2019 version byte 2", reseal(v2), ReasonVersion},
		{"body length field", reseal(lenMismatch), ReasonLength},
		{"phone not BCD", reseal(badPhone), ReasonBCD},
		{"sub-package index 0", reseal(sub0), ReasonSubPackage},
		{"sub-package past total", reseal(sub3), ReasonSubPackage},
		{"sub-package fields missing", reseal(subShort), ReasonLength},
		{"2019 header truncated", reseal(short19), ReasonLength},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := DecodeFrame(c.raw); reasonOf(err) != c.reason {
				t.Fatalf("DecodeFrame(%x): %v, want %s", c.raw, err, c.reason)
			}
		})
	}
}

func TestHeaderVersions(t *testing.T) {
	for _, h := range []Header{
		{MsgID: MsgLocation, Version: V2013, Phone: "013812345678", Serial: 65535},
		{MsgID: MsgLocation, Version: V2019, Phone: "00000000013812345678", Serial: 1},
		{MsgID: MsgBatchLocation, Version: V2013, Phone: "013812345678", Serial: 9, SubPackage: true, Total: 3, Index: 2},
		{MsgID: MsgBatchLocation, Version: V2019, Phone: "00000000013812345678", Serial: 9, SubPackage: true, Total: 3, Index: 3},
		{MsgID: MsgLocation, Version: V2013, Phone: "013812345678", Encryption: 1},
	} {
		body := []byte{0x7E, 0x7D, 1, 2, 3}
		raw := frame(h, body)
		f, err := DecodeFrame(raw)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		h.BodyLen = len(body)
		if f.Header != h || !bytes.Equal(f.Body, body) {
			t.Fatalf("decoded %+v %x, want %+v", f.Header, f.Body, h)
		}
		if NormalizePhone(f.Phone) != "13812345678" {
			t.Fatalf("phone %s", NormalizePhone(f.Phone))
		}
	}
	if _, err := AppendFrame(nil, Header{Phone: "1234567890123"}, nil); err == nil {
		t.Fatal("13 digits fit a 2013 header")
	}
	if _, err := AppendFrame(nil, Header{Phone: "138x"}, nil); err == nil {
		t.Fatal("a phone with a letter encoded")
	}
	if _, err := AppendFrame(nil, Header{Phone: "1"}, make([]byte, maxBodyLen+1)); err == nil {
		t.Fatal("a body over 1023 bytes encoded")
	}
}

func TestBCDTime(t *testing.T) {
	for _, c := range []struct {
		bcd    string
		want   time.Time
		reason string
	}{
		{"261124221005", time.Date(2026, 11, 24, 14, 10, 5, 0, time.UTC), ""},
		{"000101000000", time.Date(1999, 12, 31, 16, 0, 0, 0, time.UTC), ""},
		{"240229235959", time.Date(2024, 2, 29, 15, 59, 59, 0, time.UTC), ""},
		{"250229000000", time.Time{}, ReasonBody}, // not a leap year
		{"261324000000", time.Time{}, ReasonBody},
		{"261124240000", time.Time{}, ReasonBody},
		{"261124226000", time.Time{}, ReasonBody},
		{"2611242210A5", time.Time{}, ReasonBCD},
		{"26112422100", time.Time{}, ReasonBody}, // 5 bytes and a half: odd hex is cut below
	} {
		b, _ := hex.DecodeString(c.bcd)
		got, err := ParseTime(b)
		if c.reason != "" {
			if reasonOf(err) != c.reason {
				t.Errorf("%s: %v, want %s", c.bcd, err, c.reason)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: %v %v, want %v", c.bcd, got, err, c.want)
		}
		if again := AppendTime(nil, got); !bytes.Equal(again, b) {
			t.Errorf("AppendTime(%v) = %x, want %s", got, again, c.bcd)
		}
	}
	if d, err := bcdDigits([]byte{0x01, 0x38, 0x12}); err != nil || d != "013812" {
		t.Fatalf("bcdDigits %q %v", d, err)
	}
	if _, err := bcdDigits([]byte{0x1F}); err == nil {
		t.Fatal("0x1F read as BCD")
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 22, 10, 5, 0, chinaTime)
	l := Location{Status: StatusPositioned | StatusSouth | StatusWest | 3<<8, Lat: -36.706512, Lon: -119.161734,
		AltitudeM: 40, SpeedKmh: 32.5, Heading: 271, Time: at,
		Extras: []Extra{{ID: 0x31, Data: []byte{11}}, {ID: 0xE1, Data: []byte{1}}}}
	got, err := ParseLocation(AppendLocation(nil, &l))
	if err != nil {
		t.Fatal(err)
	}
	if got.Lat != l.Lat || got.Lon != l.Lon || got.SpeedKmh != 32.5 || got.Heading != 271 || !got.Time.Equal(at) ||
		got.LoadState() != LoadFull || len(got.Extras) != 2 {
		t.Fatalf("location %+v", got)
	}
	b, err := ParseBatch(AppendBatch(nil, 1, []Location{l, l, l}))
	if err != nil || len(b.Items) != 3 || b.Type != 1 {
		t.Fatalf("batch %+v %v", b, err)
	}
	for _, v := range []Version{V2013, V2019} {
		r := Register{Province: 37, City: 700, Maker: "UWSIM", Model: "SIM-808", TerminalID: "T1", PlateColor: 2, Plate: []byte("LuG-A0001")}
		got, err := ParseRegister(AppendRegister(nil, r, v), v)
		if err != nil || got.Maker != r.Maker || got.Model != r.Model || got.TerminalID != r.TerminalID || string(got.Plate) != "LuG-A0001" {
			t.Fatalf("%s register %+v %v", v, got, err)
		}
		code, err := ParseAuth(AppendAuth(nil, "c0de", v), v)
		if err != nil || code != "c0de" {
			t.Fatalf("%s auth %q %v", v, code, err)
		}
	}

	for _, c := range []struct {
		name string
		body []byte
		fn   func([]byte) error
	}{
		{"short location", make([]byte, 27), func(b []byte) error { _, err := ParseLocation(b); return err }},
		{"extra past end", append(AppendLocation(nil, &Location{Time: at}), 0x31, 2, 1), func(b []byte) error { _, err := ParseLocation(b); return err }},
		{"extra without length", append(AppendLocation(nil, &Location{Time: at}), 0x31), func(b []byte) error { _, err := ParseLocation(b); return err }},
		{"batch count too high", func() []byte { b := AppendBatch(nil, 0, []Location{l}); b[1] = 2; return b }(), func(b []byte) error { _, err := ParseBatch(b); return err }},
		{"batch bytes left", append(AppendBatch(nil, 0, []Location{l}), 0), func(b []byte) error { _, err := ParseBatch(b); return err }},
		{"batch type 2", func() []byte { b := AppendBatch(nil, 0, []Location{l}); b[2] = 2; return b }(), func(b []byte) error { _, err := ParseBatch(b); return err }},
		{"empty batch", []byte{0, 0, 0}, func(b []byte) error { _, err := ParseBatch(b); return err }},
		{"short register", make([]byte, 20), func(b []byte) error { _, err := ParseRegister(b, V2013); return err }},
		{"2019 auth length past end", []byte{9, 'a'}, func(b []byte) error { _, err := ParseAuth(b, V2019); return err }},
	} {
		if err := c.fn(c.body); reasonOf(err) != ReasonBody {
			t.Errorf("%s: %v, want %s", c.name, err, ReasonBody)
		}
	}
}

func TestSubPackages(t *testing.T) {
	at := time.Date(2026, 11, 24, 22, 10, 5, 0, chinaTime)
	var locs []Location
	for i := range 40 {
		locs = append(locs, Location{Status: StatusPositioned, Lat: 36.7, Lon: 119.1, Time: at.Add(time.Duration(i) * time.Second)})
	}
	body := AppendBatch(nil, 1, locs) // 40 × 30 + 3 bytes: three packages of up to 500
	var frames []*Frame
	for i, first := 0, uint16(65534); i*500 < len(body); i++ { // serials wrap across the packages
		part := body[i*500 : min((i+1)*500, len(body))]
		h := Header{MsgID: MsgBatchLocation, Phone: "13800000001", Serial: first + uint16(i), SubPackage: true, Total: 3, Index: uint16(i + 1)}
		f, err := DecodeFrame(frame(h, part))
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	a := assembler{maxBytes: 64 << 10}
	now := time.Now()
	for _, f := range []*Frame{frames[2], frames[0], frames[2]} { // out of order, one twice
		if whole, _, err := a.add(f, now); whole != nil || err != nil {
			t.Fatalf("complete too early: %v %v", whole, err)
		}
	}
	whole, serials, err := a.add(frames[1], now)
	if err != nil || whole == nil {
		t.Fatalf("not complete: %v", err)
	}
	if !bytes.Equal(whole.Body, body) || whole.Serial != 65534 || whole.SubPackage || whole.BodyLen != len(body) {
		t.Fatalf("whole %+v", whole.Header)
	}
	// Every package is answered once, the resent one included: a terminal
	// resending the same package a million times must not grow the reply.
	if len(serials) != 3 || !slices.Contains(serials, 65534) || !slices.Contains(serials, 65535) || !slices.Contains(serials, 0) {
		t.Fatalf("serials %v: every package answered once", serials)
	}
	if b, err := ParseBatch(whole.Body); err != nil || len(b.Items) != 40 {
		t.Fatalf("reassembled batch: %d items, %v", len(b.Items), err)
	}
	if len(a.partials) != 0 {
		t.Fatal("partial kept after completion")
	}

	// Limits: the byte cap, concurrent messages, stale partials.
	small := assembler{maxBytes: 600}
	small.add(frames[0], now)
	if _, _, err := small.add(frames[1], now); reasonOf(err) != ReasonOversized {
		t.Fatalf("over the cap: %v", err)
	}
	many := assembler{maxBytes: 1 << 20}
	for i := range maxPartials + 1 {
		f := *frames[0]
		f.Serial = uint16(i * 10)
		_, _, err := many.add(&f, now)
		if i < maxPartials && err != nil || i == maxPartials && reasonOf(err) != ReasonSubPackage {
			t.Fatalf("partial %d: %v", i, err)
		}
	}
	if _, _, err := many.add(frames[0], now.Add(partialTimeout+time.Second)); err != nil {
		t.Fatalf("stale partials not dropped: %v", err)
	}
	big := *frames[0]
	big.Total = maxPackages + 1
	if _, _, err := many.add(&big, now); reasonOf(err) != ReasonSubPackage {
		t.Fatalf("%d packages: %v", big.Total, err)
	}
}

func TestFrameReader(t *testing.T) {
	hb := frame(Header{MsgID: MsgHeartbeat, Phone: "1"}, nil)
	var stream []byte
	stream = append(stream, "junk"...)
	stream = append(stream, hb...)
	// A frame cut before its end flag: the next frame's start flag ends it
	// (it decodes, being the same bytes), and the next frame's content is
	// skipped up to its end flag, which then starts the next frame.
	stream = append(stream, hb[:len(hb)-1]...)
	stream = append(stream, hb...)
	stream = append(stream, flag)
	stream = append(stream, bytes.Repeat([]byte{1}, 100)...) // oversized
	stream = append(stream, flag)
	stream = append(stream, hb...)
	stream = append(stream, bytes.Repeat([]byte{2}, 100)...) // garbage
	fr := newFrameReader(bytes.NewReader(stream), 64)
	var got []string
	for {
		raw, err := fr.next()
		switch {
		case errors.Is(err, errOversized):
			got = append(got, "oversized")
			continue
		case errors.Is(err, errGarbage):
			got = append(got, "garbage")
		case err != nil:
			got = append(got, err.Error())
		default:
			if _, err := DecodeFrame(raw); err != nil {
				got = append(got, reasonOf(err))
			} else {
				got = append(got, "frame")
			}
			continue
		}
		break
	}
	want := "frame frame oversized frame garbage"
	if strings.Join(got, " ") != want {
		t.Fatalf("read %v, want %s", got, want)
	}
}
