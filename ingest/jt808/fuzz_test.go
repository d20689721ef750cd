package jt808

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder, the body
// parsers, the stream reader and the reassembler. None may panic; every
// refusal must be a *FrameError with a known reason; a frame that decodes
// must encode back to a frame that decodes to the same header and body.
func FuzzDecodeFrame(f *testing.F) {
	for _, raw := range fixtures(f) {
		f.Add(raw)
	}
	at := time.Date(2026, 11, 24, 22, 10, 5, 0, chinaTime)
	l := Location{Status: StatusPositioned, Lat: 36.7, Lon: 119.1, Time: at, Extras: []Extra{{0x31, []byte{9}}, {0xE1, []byte{0x7E}}}}
	f.Add(frame(Header{MsgID: MsgLocation, Phone: "13800000001", Serial: 0x7E7D}, AppendLocation(nil, &l)))
	f.Add(frame(Header{MsgID: MsgBatchLocation, Version: V2019, Phone: "13800000001", SubPackage: true, Total: 2, Index: 1},
		AppendBatch(nil, 1, []Location{l, l})))
	f.Add(frame(Header{MsgID: MsgAuthenticate, Version: V2019, Phone: "1"}, AppendAuth(nil, "code", V2019)))
	f.Add([]byte{flag, escape, flag})
	known := map[string]bool{}
	for _, r := range FrameReasons {
		known[r] = true
	}
	check := func(t *testing.T, err error) {
		var fe *FrameError
		if err != nil && (!errors.As(err, &fe) || !known[fe.Reason]) {
			t.Fatalf("error %v is not a FrameError with a known reason", err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeFrame(data)
		check(t, err)
		if err == nil {
			again, err := AppendFrame(nil, fr.Header, fr.Body)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", fr.Header, err)
			}
			back, err := DecodeFrame(again)
			if err != nil || back.Header != fr.Header || !bytes.Equal(back.Body, fr.Body) {
				t.Fatalf("round trip %+v → %+v (%v)", fr.Header, back, err)
			}
			for _, v := range []Version{V2013, V2019} {
				_, err = ParseRegister(fr.Body, v)
				check(t, err)
				_, err = ParseAuth(fr.Body, v)
				check(t, err)
			}
			_, err = ParseLocation(fr.Body)
			check(t, err)
			_, err = ParseBatch(fr.Body)
			check(t, err)
			if fr.SubPackage {
				a := assembler{maxBytes: 4096}
				_, _, err = a.add(fr, at)
				check(t, err)
			}
			p := DefaultProfile()
			if l, err := ParseLocation(fr.Body); err == nil {
				p.Records(&l)
			}
		}
		rd := newFrameReader(bytes.NewReader(data), 64)
		for range 1000 {
			raw, err := rd.next()
			if err != nil && !errors.Is(err, errOversized) {
				break
			}
			if err == nil {
				_, err = DecodeFrame(raw)
				check(t, err)
			}
		}
	})
}
