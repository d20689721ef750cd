package web

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// TestSharedDeflateMakesOneValidGzipStream: events deflated once and
// written into two connections' streams in different orders each decode,
// CRC and length checked, to exactly what was sent.
func TestSharedDeflateMakesOneValidGzipStream(t *testing.T) {
	var evs []*event
	for i := range 20 {
		evs = append(evs, newEvent(fmt.Appendf(nil, "event: trucks\ndata: {\"t\":[[\"鲁G·A%04d\",36.70%04d,119.1,90,30.5,\"loaded\",1795615805]]}\n\n", i, i*7)))
	}
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, {19, 3, 3, 7, 0}} {
		var wire, want bytes.Buffer
		w, err := newSSEWriter(&wire, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range order {
			w.write(evs[i])
			want.Write(evs[i].raw)
		}
		w.write(keepAlive)
		want.Write(keepAlive.raw)
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(&wire)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr) // checks the trailer's CRC-32 and length
		if err != nil {
			t.Fatalf("order %v: %v", order, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("order %v: decoded %d bytes, want %d", order, len(got), want.Len())
		}
	}
	var plain bytes.Buffer
	w, _ := newSSEWriter(&plain, false)
	w.write(evs[0])
	w.close()
	if !bytes.Equal(plain.Bytes(), evs[0].raw) {
		t.Fatalf("plain stream: %q", plain.Bytes())
	}
}
