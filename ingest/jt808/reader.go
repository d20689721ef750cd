package jt808

import (
	"bufio"
	"errors"
	"io"
	"time"
)

// frameReader cuts a byte stream into 0x7E … 0x7E frames of at most max
// bytes (flags and escapes included).
type frameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, max), max: max}
}

// errGarbage and errOversized are stream errors next reports: the caller
// counts them and goes on reading (the reader has resynchronised).
var (
	errGarbage   = errors.New("bytes outside a frame")
	errOversized = errors.New("frame over the size cap")
)

// next returns the next frame, flags included, valid until the next call.
// Bytes before a start flag are skipped: more than max of them return
// errGarbage. A frame longer than max is skipped up to its end flag and
// returns errOversized. Two flags in a row ("7E 7E", one frame's end and the
// next's start, as some terminals send) are read as the second being a
// start. Other errors are the connection's.
func (fr *frameReader) next() ([]byte, error) {
	skipped := 0
	for {
		b, err := fr.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == flag {
			break
		}
		if skipped++; skipped > fr.max {
			return nil, errGarbage
		}
	}
	for {
		body, err := fr.r.ReadSlice(flag)
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = fr.r.ReadSlice(flag)
			}
			if err != nil {
				return nil, err
			}
			return nil, errOversized
		}
		if err != nil {
			return nil, err
		}
		if len(body) == 1 {
			continue // an empty frame: this flag starts the next one
		}
		if len(body)+1 > fr.max {
			return nil, errOversized
		}
		fr.buf = append(append(fr.buf[:0], flag), body...)
		return fr.buf, nil
	}
}

// Limits of sub-package reassembly per connection.
const (
	maxPartials    = 4               // messages being reassembled at once
	maxPackages    = 256             // packages of one message
	partialTimeout = 2 * time.Minute // an incomplete message is dropped after this
)

// partial is a message being reassembled from sub-packages.
type partial struct {
	header  Header // of the first package received
	parts   [][]byte
	serials []uint16 // of every package received, to answer each
	got     int
	size    int
	started time.Time
}

// assembler reassembles sub-packaged messages of one connection. Packages
// of one message have consecutive serials, so package i of a message whose
// first package had serial s has serial s+i-1: the message is keyed by its
// id, its total and s.
type assembler struct {
	maxBytes int
	partials map[partialKey]*partial
}

type partialKey struct {
	msgID, total, first uint16
}

// add takes one sub-package. It returns the whole message once its last
// missing package arrives (the header of package 1, with SubPackage
// cleared and BodyLen the whole length) and the serials of all its
// packages; otherwise nil.
func (a *assembler) add(f *Frame, now time.Time) (*Frame, []uint16, error) {
	if a.partials == nil {
		a.partials = make(map[partialKey]*partial)
	}
	for k, p := range a.partials {
		if now.Sub(p.started) > partialTimeout {
			delete(a.partials, k)
		}
	}
	if f.Total > maxPackages {
		return nil, nil, frameErr(ReasonSubPackage, "%d packages, at most %d", f.Total, maxPackages)
	}
	k := partialKey{f.MsgID, f.Total, f.Serial - (f.Index - 1)}
	p := a.partials[k]
	if p == nil {
		if len(a.partials) >= maxPartials {
			return nil, nil, frameErr(ReasonSubPackage, "more than %d messages being reassembled at once", maxPartials)
		}
		p = &partial{header: f.Header, parts: make([][]byte, f.Total), started: now}
		a.partials[k] = p
	}
	if p.parts[f.Index-1] == nil {
		if p.size+len(f.Body) > a.maxBytes {
			delete(a.partials, k)
			return nil, nil, frameErr(ReasonOversized, "reassembled message 0x%04X over %d bytes", f.MsgID, a.maxBytes)
		}
		p.parts[f.Index-1] = append([]byte{}, f.Body...)
		p.got++
		p.size += len(f.Body)
		p.serials = append(p.serials, f.Serial) // a resent package is answered once, not stored again
	}
	if p.got < int(f.Total) {
		return nil, nil, nil
	}
	delete(a.partials, k)
	whole := &Frame{Header: p.header}
	whole.SubPackage, whole.Total, whole.Index = false, 0, 0
	whole.Serial = k.first
	whole.Body = make([]byte, 0, p.size)
	for _, b := range p.parts {
		whole.Body = append(whole.Body, b...)
	}
	whole.BodyLen = len(whole.Body)
	return whole, p.serials, nil
}
