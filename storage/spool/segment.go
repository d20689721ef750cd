package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	headerSize    = 16
	segVersion    = 1
	frameHeader   = 8
	segmentSuffix = ".seg"
	segmentDigits = 20
	corruptDir    = "corrupt"

	// scanChunk is the read-ahead of sequential scans (Open, Scan).
	scanChunk = 1 << 20
	// Next reads minBatchRead bytes first, doubling up to maxBatchRead.
	minBatchRead = 64 << 10
	maxBatchRead = 4 << 20
)

var (
	segMagic   = [4]byte{'U', 'W', 'S', 'P'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// frameCRC is the CRC-32C of a frame's four little-endian length bytes
// followed by its payload. The length bytes are folded in by hand so that no
// slice of a stack array reaches crc32 (which would move it to the heap on the
// Submit path).
func frameCRC(n uint32, payload []byte) uint32 {
	c := ^uint32(0)
	for i := 0; i < 4; i++ {
		c = castagnoli[byte(c)^byte(n>>(8*i))] ^ (c >> 8)
	}
	return crc32.Update(^c, castagnoli, payload)
}

// crc32c is the plain CRC-32C of b.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func segmentName(id uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, id, segmentSuffix)
}

func segmentPath(dir string, id uint64) string { return filepath.Join(dir, segmentName(id)) }

func isSegmentName(name string) bool {
	if len(name) != segmentDigits+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return false
	}
	for _, r := range name[:segmentDigits] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func parseSegmentName(name string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("bad segment file name %q", name)
	}
	return id, nil
}

func encodeHeader(id uint64) [headerSize]byte {
	var h [headerSize]byte
	copy(h[0:4], segMagic[:])
	binary.LittleEndian.PutUint16(h[4:6], segVersion)
	binary.LittleEndian.PutUint64(h[8:16], id)
	return h
}

func checkHeader(h []byte, id uint64) error {
	if !bytes.Equal(h[0:4], segMagic[:]) {
		return fmt.Errorf("bad magic %q", h[0:4])
	}
	if v := binary.LittleEndian.Uint16(h[4:6]); v != segVersion {
		return fmt.Errorf("unsupported segment version %d", v)
	}
	if got := binary.LittleEndian.Uint64(h[8:16]); got != id {
		return fmt.Errorf("header names segment %d", got)
	}
	return nil
}

// createSegment creates segment id with its header and, when durable, syncs
// the file and the directory so that the file itself survives a crash.
func createSegment(dir string, id uint64, durable bool) (*os.File, error) {
	path := segmentPath(dir, id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: create segment %s: %w", path, err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	h := encodeHeader(id)
	if _, err := f.WriteAt(h[:], 0); err != nil {
		return fail(fmt.Errorf("spool: write segment header %s: %w", path, err))
	}
	if durable {
		if err := fdatasync(f); err != nil {
			return fail(fmt.Errorf("spool: sync segment %s: %w", path, err))
		}
		if err := syncDir(dir); err != nil {
			return fail(err)
		}
	}
	return f, nil
}

// writeHeaderAt re-initialises an existing segment file to just its header.
func writeHeaderAt(path string, id uint64, durable bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open segment %s: %w", path, err)
	}
	defer f.Close()
	h := encodeHeader(id)
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("spool: truncate segment %s: %w", path, err)
	}
	if _, err := f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("spool: write segment header %s: %w", path, err)
	}
	if durable {
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("spool: sync segment %s: %w", path, err)
		}
	}
	return nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync dir %s: %w", dir, err)
	}
	return nil
}

type frameStatus int

const (
	frameOK         frameStatus = iota
	frameBad                    // incomplete before the limit, or CRC mismatch
	frameOverBudget             // valid length, but longer than the caller's budget
)

// frameReader reads frames of one segment file through a buffer holding the
// file bytes [base, base+len(buf)), never reading at or past limit.
type frameReader struct {
	f     *os.File
	limit int64
	base  int64
	buf   []byte
	// raEnd is the read-ahead target: a read extends up to it when possible.
	raEnd int64
	// reuse allows compacting and overwriting buf (Scan, recovery). Without
	// it, returned payloads alias buf and it is never overwritten (Next).
	reuse bool
	chunk int64 // without reuse: size of the last read
}

// ensure makes file bytes [at, at+k) available in buf; at+k <= limit.
func (r *frameReader) ensure(at, k int64) error {
	end := at + k
	have := r.base + int64(len(r.buf))
	if at >= r.base && end <= have {
		return nil
	}
	want := max(end, min(r.raEnd, r.limit))
	if r.reuse {
		if at >= r.base && at <= have {
			n := copy(r.buf, r.buf[at-r.base:])
			r.buf = r.buf[:n]
		} else {
			r.buf = r.buf[:0]
		}
		r.base = at
		need := int(want - at)
		if cap(r.buf) < need {
			nb := make([]byte, len(r.buf), need)
			copy(nb, r.buf)
			r.buf = nb
		}
		old := len(r.buf)
		r.buf = r.buf[:need]
		if _, err := r.f.ReadAt(r.buf[old:], at+int64(old)); err != nil {
			r.buf = r.buf[:old]
			return readErr(r.f, at+int64(old), err)
		}
		return nil
	}
	// Payloads already handed out alias the old buffer: start a new one,
	// growing the read size geometrically so that a batch limited by record
	// count does not read far more than it returns.
	r.chunk = min(max(r.chunk*2, minBatchRead), maxBatchRead)
	want = max(end, min(want, at+r.chunk))
	buf := make([]byte, want-at)
	if _, err := r.f.ReadAt(buf, at); err != nil {
		return readErr(r.f, at, err)
	}
	r.base, r.buf = at, buf
	return nil
}

func readErr(f *os.File, at int64, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s at %d: %w", f.Name(), at, err)
}

// frameAt parses the frame at file offset at. budget >= 0 limits the frame
// size (header included) the caller will accept. The payload aliases r.buf;
// its capacity is clipped so appending to it cannot clobber a neighbour.
func (r *frameReader) frameAt(at int64, budget int64) ([]byte, frameStatus, error) {
	if r.limit-at < frameHeader {
		return nil, frameBad, nil
	}
	if err := r.ensure(at, frameHeader); err != nil {
		return nil, frameBad, err
	}
	h := r.buf[at-r.base:]
	n := int64(binary.LittleEndian.Uint32(h[0:4]))
	if n > r.limit-at-frameHeader {
		return nil, frameBad, nil
	}
	if budget >= 0 && frameHeader+n > budget {
		return nil, frameOverBudget, nil
	}
	if err := r.ensure(at, frameHeader+n); err != nil {
		return nil, frameBad, err
	}
	fr := r.buf[at-r.base : at-r.base+frameHeader+n]
	if frameCRC(uint32(n), fr[frameHeader:]) != binary.LittleEndian.Uint32(fr[4:8]) {
		return nil, frameBad, nil
	}
	return fr[frameHeader:len(fr):len(fr)], frameOK, nil
}

// resync searches (at, limit) of f for the first offset where a whole frame
// with a valid CRC parses. It returns that offset (or limit when there is
// none) and the bytes skipped.
func resync(f *os.File, at, limit int64) (next int64, found bool, skipped []byte, err error) {
	data := make([]byte, limit-at)
	if _, err := f.ReadAt(data, at); err != nil {
		return 0, false, nil, readErr(f, at, err)
	}
	for y := 1; y+frameHeader <= len(data); y++ {
		n := int(binary.LittleEndian.Uint32(data[y : y+4]))
		if n > len(data)-y-frameHeader {
			continue
		}
		if frameCRC(uint32(n), data[y+frameHeader:y+frameHeader+n]) == binary.LittleEndian.Uint32(data[y+4:y+8]) {
			return at + int64(y), true, data[:y], nil
		}
	}
	return limit, false, data, nil
}

// skipCorrupt handles an invalid frame at (seg, at) met while reading up to
// limit: it returns the offset to continue from, saving and counting the
// skipped bytes the first time this region is met.
func (s *Spool) skipCorrupt(f *os.File, seg uint64, at, limit int64) (int64, error) {
	s.mu.Lock()
	next, ok := s.corrupt[Position{Segment: seg, Offset: at}]
	s.mu.Unlock()
	if ok && next <= limit {
		return next, nil
	}
	next, _, skipped, err := resync(f, at, limit)
	if err != nil {
		return 0, fmt.Errorf("spool: resync segment %d at %d: %w", seg, at, err)
	}
	s.recordCorrupt(seg, at, next, skipped)
	return next, nil
}

// recordCorrupt saves the bytes of corrupt region [at, next) of segment seg to
// Dir/corrupt, counts and logs it, once per region per Open.
func (s *Spool) recordCorrupt(seg uint64, at, next int64, skipped []byte) {
	key := Position{Segment: seg, Offset: at}
	s.mu.Lock()
	if _, ok := s.corrupt[key]; ok {
		s.mu.Unlock()
		return
	}
	s.corrupt[key] = next
	s.mu.Unlock()
	s.m.corrupt.Inc()
	path, err := s.saveCorrupt(fmt.Sprintf("%0*d-%d.bin", segmentDigits, seg, at), skipped)
	ev := s.log.Error().Uint64("segment", seg).Int64("offset", at).Int("bytes", len(skipped))
	if err != nil {
		ev = ev.AnErr("save_error", err)
	} else {
		ev = ev.Str("saved_to", path)
	}
	ev.Msg("spool: skipped corrupt record bytes")
}

// saveCorrupt writes data to Dir/corrupt/name unless that file exists (it was
// saved by an earlier Open).
func (s *Spool) saveCorrupt(name string, data []byte) (string, error) {
	dir := filepath.Join(s.opts.Dir, corruptDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("spool: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if errors.Is(err, os.ErrExist) {
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("spool: save corrupt bytes: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("spool: save corrupt bytes %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("spool: save corrupt bytes %s: %w", path, err)
	}
	return path, nil
}
