package web

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// event is one server-sent event, shared by every console that receives it.
//
// Compressed streams share the compression too: an event is deflated once,
// by a fresh compressor ending in a sync flush, so its bytes stand alone
// (no reference to earlier data) and any number of connections can write
// them, each into its own gzip stream. A deflate stream may be any sequence
// of such blocks; each connection keeps the CRC-32 and length its gzip
// trailer needs. The cost of compression is then per event, not per
// console (docs/benchmarks.md, BenchmarkStreamFanout).
type event struct {
	raw  []byte
	once sync.Once
	z    []byte
}

func newEvent(raw []byte) *event { return &event{raw: raw} }

// deflated returns the event's stand-alone deflate blocks.
func (e *event) deflated() []byte {
	e.once.Do(func() {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestSpeed)
		w.Write(e.raw)
		w.Flush() // sync flush: byte-aligned, not final
		e.z = b.Bytes()
	})
	return e.z
}

// gzipHeader starts a gzip member: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// sseWriter writes events to one connection, plain or as one gzip stream.
type sseWriter struct {
	w    io.Writer
	gzip bool
	crc  uint32
	size uint32
}

func newSSEWriter(w io.Writer, gzip bool) (*sseWriter, error) {
	s := &sseWriter{w: w, gzip: gzip}
	if gzip {
		if _, err := w.Write(gzipHeader); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *sseWriter) write(e *event) error {
	if !s.gzip {
		_, err := s.w.Write(e.raw)
		return err
	}
	s.crc = crc32.Update(s.crc, crc32.IEEETable, e.raw)
	s.size += uint32(len(e.raw))
	_, err := s.w.Write(e.deflated())
	return err
}

// close ends a gzip stream: a final empty block, then CRC-32 and length.
func (s *sseWriter) close() error {
	if !s.gzip {
		return nil
	}
	var t [10]byte
	t[0], t[1] = 0x03, 0x00 // final block, fixed Huffman, end of block
	binary.LittleEndian.PutUint32(t[2:], s.crc)
	binary.LittleEndian.PutUint32(t[6:], s.size)
	_, err := s.w.Write(t[:])
	return err
}
