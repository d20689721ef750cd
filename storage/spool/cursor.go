package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	defaultBatchRecords = 1000
	defaultBatchBytes   = 4 << 20

	checkpointPrefix = "cursor-"
	checkpointSuffix = ".ckpt"
	checkpointSize   = 28
	checkpointVer    = 1
	maxCursorName    = 100
)

var ckptMagic = [4]byte{'U', 'W', 'C', 'K'}

// Position is a place in the spool: a segment id and a byte offset in that
// segment file. Positions are only meaningful when produced by the spool.
type Position struct {
	Segment uint64
	Offset  int64
}

// less orders positions. The end of a segment and the start of the next are
// different but equivalent positions; less never ranks a logically later
// position before an earlier one.
func (p Position) less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Batch is a run of consecutive records returned by Cursor.Next.
type Batch struct {
	// Records are the payloads in append order. They are owned by the
	// caller and never touched by the spool again.
	Records [][]byte
	// End is the position just past the last record; pass the Batch to Ack
	// once the records are processed.
	End Position
}

// Cursor is a durable named consumer. It reads records in order from its
// in-memory read position and durably remembers, via Ack, how far it has
// consumed. Segments are kept until every cursor has acked past them.
// Next is meant to be called from one goroutine at a time; all methods are
// safe for concurrent use.
type Cursor struct {
	s    *Spool
	name string
	path string
	lag  prometheus.Gauge

	ackMu sync.Mutex // serialises checkpoint writes

	readMu sync.Mutex // guards f and fID
	f      *os.File
	fID    uint64

	// Guarded by s.mu.
	read Position
	ack  Position
	gen  uint64 // bumped by Rewind
}

func validCursorName(name string) error {
	if name == "" || len(name) > maxCursorName {
		return fmt.Errorf("spool: cursor name %q: want 1 to %d characters", name, maxCursorName)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '_' || r == '-' || r == '.')
		if !ok {
			return fmt.Errorf("spool: cursor name %q: want letters, digits, '_', '-', '.', starting with a letter or digit", name)
		}
	}
	return nil
}

func isCheckpointName(name string) bool {
	return strings.HasPrefix(name, checkpointPrefix) && strings.HasSuffix(name, checkpointSuffix) &&
		validCursorName(cursorNameOf(name)) == nil
}

func cursorNameOf(file string) string {
	return strings.TrimSuffix(strings.TrimPrefix(file, checkpointPrefix), checkpointSuffix)
}

func (s *Spool) newCursorLocked(name string, pos Position) *Cursor {
	c := &Cursor{
		s:    s,
		name: name,
		path: filepath.Join(s.opts.Dir, checkpointPrefix+name+checkpointSuffix),
		lag:  s.m.lag.WithLabelValues(name),
		read: pos,
		ack:  pos,
	}
	s.cursors[name] = c
	c.lag.Set(float64(s.committedLogicalLocked() - s.logicalLocked(pos)))
	return c
}

// Cursor returns the durable consumer called name (letters, digits, '_', '-'
// and '.', at most 100 characters). A cursor that has never acked starts at
// the oldest retained record; its checkpoint file is written at once, so it
// holds back segment deletion from then on, across restarts. Asking for the
// same name twice returns the same *Cursor. Checkpoints found in Dir are
// loaded by Open, so their cursors retain data before Cursor is called.
func (s *Spool) Cursor(name string) (*Cursor, error) {
	if err := validCursorName(name); err != nil {
		return nil, err
	}
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: cursor %s: %w", name, ErrClosed)
	}
	if c, ok := s.cursors[name]; ok {
		s.mu.Unlock()
		return c, nil
	}
	c := s.newCursorLocked(name, Position{Segment: s.segs[0].id, Offset: headerSize})
	pos := c.ack
	s.mu.Unlock()

	c.ackMu.Lock()
	err := c.writeCheckpoint(pos)
	c.ackMu.Unlock()
	if err != nil {
		s.mu.Lock()
		delete(s.cursors, name)
		s.mu.Unlock()
		s.m.lag.DeleteLabelValues(name)
		return nil, err
	}
	return c, nil
}

// loadCheckpoint registers the cursor of one checkpoint file during Open.
//
// A corrupt checkpoint does not fail Open or Cursor: the cursor falls back to
// the oldest retained record, with an error-level log and the bad file copied
// to Dir/corrupt. Of the two choices this is the one that never loses data:
// nothing has been deleted yet at Open, so restarting from the oldest record
// only re-delivers (consumers are idempotent), whereas an error would stall
// the consumer. A checkpoint pointing into a deleted segment, or at a place
// that does not exist, moves to the oldest retained record for the same reason.
func (s *Spool) loadCheckpoint(file string) error {
	name := cursorNameOf(file)
	path := filepath.Join(s.opts.Dir, file)
	oldest := Position{Segment: s.segs[0].id, Offset: headerSize}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("spool: read checkpoint %s: %w", path, err)
	}
	pos, perr := decodeCheckpoint(data)
	rewrite := false
	switch {
	case perr != nil:
		saved, serr := s.saveCorrupt(fmt.Sprintf("%s.%d.bad", file, len(data)), data)
		ev := s.log.Error().Err(perr).Str("cursor", name).Str("checkpoint", path)
		if serr != nil {
			ev = ev.AnErr("save_error", serr)
		} else {
			ev = ev.Str("saved_to", saved)
		}
		ev.Msg("spool: corrupt checkpoint; cursor restarts at the oldest retained record (records will be re-delivered)")
		pos, rewrite = oldest, true
	case pos.Segment < oldest.Segment:
		s.log.Info().Str("cursor", name).Uint64("segment", pos.Segment).
			Msg("spool: checkpoint points to a deleted segment; moving to the oldest retained record")
		pos = oldest
	default:
		i := s.segIndexLocked(pos.Segment)
		if i == len(s.segs) || s.segs[i].id != pos.Segment || pos.Offset < headerSize || pos.Offset > s.segs[i].size {
			s.log.Error().Str("cursor", name).Uint64("segment", pos.Segment).Int64("offset", pos.Offset).
				Msg("spool: checkpoint points past the retained data; cursor restarts at the oldest retained record (records will be re-delivered)")
			pos, rewrite = oldest, true
		}
	}
	s.mu.Lock()
	c := s.newCursorLocked(name, pos)
	s.mu.Unlock()
	if rewrite {
		if err := c.writeCheckpoint(pos); err != nil {
			return err
		}
	}
	return nil
}

func encodeCheckpoint(p Position) []byte {
	b := make([]byte, checkpointSize)
	copy(b[0:4], ckptMagic[:])
	binary.LittleEndian.PutUint32(b[4:8], checkpointVer)
	binary.LittleEndian.PutUint64(b[8:16], p.Segment)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.Offset))
	binary.LittleEndian.PutUint32(b[24:28], crc32c(b[:24]))
	return b
}

func decodeCheckpoint(b []byte) (Position, error) {
	if len(b) != checkpointSize {
		return Position{}, fmt.Errorf("checkpoint is %d bytes, want %d", len(b), checkpointSize)
	}
	if !bytes.Equal(b[0:4], ckptMagic[:]) {
		return Position{}, fmt.Errorf("bad checkpoint magic %q", b[0:4])
	}
	if crc32c(b[:24]) != binary.LittleEndian.Uint32(b[24:28]) {
		return Position{}, errors.New("checkpoint CRC mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != checkpointVer {
		return Position{}, fmt.Errorf("unsupported checkpoint version %d", v)
	}
	return Position{
		Segment: binary.LittleEndian.Uint64(b[8:16]),
		Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
	}, nil
}

// writeCheckpoint durably replaces the cursor's checkpoint: temporary file,
// fsync, rename, fsync of the directory. Callers hold c.ackMu.
func (c *Cursor) writeCheckpoint(p Position) error {
	durable := !c.s.opts.NoSync
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: write checkpoint %s: %w", tmp, err)
	}
	if _, err := f.Write(encodeCheckpoint(p)); err != nil {
		f.Close()
		return fmt.Errorf("spool: write checkpoint %s: %w", tmp, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("spool: sync checkpoint %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: close checkpoint %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("spool: rename checkpoint %s: %w", c.path, err)
	}
	if durable {
		if err := syncDir(c.s.opts.Dir); err != nil {
			return fmt.Errorf("spool: checkpoint %s: %w", c.path, err)
		}
	}
	return nil
}

// Next blocks until at least one committed record exists past the cursor's
// read position, then returns up to maxRecords records totalling about
// maxBytes (frame headers counted; at least one record is always returned,
// however large). Non-positive limits select 1000 records and 4 MiB. It
// advances only the in-memory read position: call Ack to make consumption
// durable. It returns ctx.Err() when ctx is done and an error wrapping
// ErrClosed when the spool is closed.
func (c *Cursor) Next(ctx context.Context, maxRecords, maxBytes int) (Batch, error) {
	if maxRecords <= 0 {
		maxRecords = defaultBatchRecords
	}
	if maxBytes <= 0 {
		maxBytes = defaultBatchBytes
	}
	s := c.s
	for {
		if err := ctx.Err(); err != nil {
			return Batch{}, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Batch{}, fmt.Errorf("spool: cursor %s: next: %w", c.name, ErrClosed)
		}
		pos, limit, ok := s.normalizeLocked(c.read)
		c.read = pos
		if !ok {
			ch := s.notify
			s.mu.Unlock()
			c.dropStale(pos.Segment)
			select {
			case <-ctx.Done():
				return Batch{}, ctx.Err()
			case <-s.closedCh:
				return Batch{}, fmt.Errorf("spool: cursor %s: next: %w", c.name, ErrClosed)
			case <-ch:
			}
			continue
		}
		gen := c.gen
		s.mu.Unlock()

		b, err := c.readBatch(pos, limit, maxRecords, int64(maxBytes))
		if err != nil {
			return Batch{}, err
		}
		s.mu.Lock()
		if c.gen != gen || c.read != pos {
			// Rewind, Ack or another Next moved the read position meanwhile.
			s.mu.Unlock()
			continue
		}
		c.read = b.End
		s.mu.Unlock()
		if len(b.Records) > 0 {
			return b, nil
		}
		// Only corrupt bytes were skipped; look again.
	}
}

// normalizeLocked moves p past finished sealed segments (and out of deleted
// ones) and reports the read limit of its segment and whether committed
// records lie between p and that limit.
func (s *Spool) normalizeLocked(p Position) (Position, int64, bool) {
	i := s.segIndexLocked(p.Segment)
	if i == len(s.segs) {
		i = len(s.segs) - 1
		last := s.segs[i]
		return Position{Segment: last.id, Offset: last.size}, last.size, false
	}
	for ; ; i++ {
		seg := s.segs[i]
		if seg.id != p.Segment || p.Offset < headerSize {
			p = Position{Segment: seg.id, Offset: headerSize}
		}
		if p.Offset < seg.size {
			return p, seg.size, true
		}
		if i == len(s.segs)-1 {
			return p, seg.size, false
		}
	}
}

// readBatch reads whole valid frames of segment pos.Segment from pos.Offset
// up to limit, skipping corrupt regions.
func (c *Cursor) readBatch(pos Position, limit int64, maxRecords int, maxBytes int64) (Batch, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.s.closedFlag.Load() {
		return Batch{}, fmt.Errorf("spool: cursor %s: next: %w", c.name, ErrClosed)
	}
	f, err := c.segFile(pos.Segment)
	if err != nil {
		return Batch{}, err
	}
	r := frameReader{f: f, limit: limit, base: pos.Offset, raEnd: pos.Offset + maxBytes}
	at := pos.Offset
	var recs [][]byte
	var used int64
	for at < limit && len(recs) < maxRecords {
		budget := int64(-1) // the first record is returned whatever its size
		if len(recs) > 0 {
			budget = max(maxBytes-used, 0)
		}
		p, st, err := r.frameAt(at, budget)
		if err != nil {
			return Batch{}, fmt.Errorf("spool: cursor %s: %w", c.name, err)
		}
		if st == frameOverBudget {
			break
		}
		if st == frameBad {
			if len(recs) > 0 {
				break // return what we have; the next call deals with it
			}
			if at, err = c.s.skipCorrupt(f, pos.Segment, at, limit); err != nil {
				return Batch{}, err
			}
			r.raEnd = at + maxBytes
			continue
		}
		recs = append(recs, p)
		used += frameHeader + int64(len(p))
		at += frameHeader + int64(len(p))
	}
	return Batch{Records: recs, End: Position{Segment: pos.Segment, Offset: at}}, nil
}

// segFile returns the cursor's read handle on segment id. Callers hold readMu.
func (c *Cursor) segFile(id uint64) (*os.File, error) {
	if c.f != nil && c.fID == id {
		return c.f, nil
	}
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	path := segmentPath(c.s.opts.Dir, id)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spool: cursor %s: open segment %s: %w", c.name, path, err)
	}
	c.f, c.fID = f, id
	return f, nil
}

// dropStale closes the read handle if it is on a segment before id, so that a
// deleted segment's space is freed while the consumer waits.
func (c *Cursor) dropStale(id uint64) {
	c.readMu.Lock()
	if c.f != nil && c.fID < id {
		c.f.Close()
		c.f = nil
	}
	c.readMu.Unlock()
}

func (c *Cursor) closeFile() {
	c.readMu.Lock()
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.readMu.Unlock()
}

// Ack durably records that every record up to b.End is consumed (checkpoint
// written to a temporary file, fsync'd, renamed, directory fsync'd), then
// deletes the sealed segments every cursor has passed. Acking a batch at or
// behind the last ack is a no-op; b.End must be a position the spool handed
// out. If b.End is past the read position, the read position moves to it.
func (c *Cursor) Ack(b Batch) error {
	if b.End == (Position{}) {
		return nil
	}
	s := c.s
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("spool: cursor %s: ack: %w", c.name, ErrClosed)
	}
	if !c.ack.less(b.End) {
		s.mu.Unlock()
		return nil
	}
	i := s.segIndexLocked(b.End.Segment)
	if i == len(s.segs) || s.segs[i].id != b.End.Segment || b.End.Offset < headerSize || b.End.Offset > s.segs[i].size {
		s.mu.Unlock()
		return fmt.Errorf("spool: cursor %s: ack %d:%d: not a committed position", c.name, b.End.Segment, b.End.Offset)
	}
	s.mu.Unlock()

	if err := c.writeCheckpoint(b.End); err != nil {
		return err
	}

	s.mu.Lock()
	if c.ack.less(b.End) {
		c.ack = b.End
	}
	if c.read.less(b.End) {
		c.read = b.End
	}
	s.retireAndUnlock()
	return nil
}

// Rewind moves the read position back to the last Ack, so the next Next
// re-delivers everything not yet acked.
func (c *Cursor) Rewind() {
	c.s.mu.Lock()
	c.read = c.ack
	c.gen++
	c.s.mu.Unlock()
}

// LagBytes returns the record bytes (frame headers included) committed but
// not yet acked by this cursor.
func (c *Cursor) LagBytes() int64 {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committedLogicalLocked() - s.logicalLocked(c.ack)
}

// Scan calls fn with every retained committed record, oldest first, as of the
// call (records committed meanwhile may or may not be seen). The payload is
// valid only during the call. Scan stops at fn's first error and returns it
// unwrapped. Corrupt regions are skipped as by Next.
func (s *Spool) Scan(fn func(payload []byte) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("spool: scan: %w", ErrClosed)
	}
	segs := append([]segment(nil), s.segs...)
	s.mu.Unlock()

	r := frameReader{reuse: true}
	for _, seg := range segs {
		path := segmentPath(s.opts.Dir, seg.id)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // consumed by every cursor and deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("spool: scan: open segment %s: %w", path, err)
		}
		err = s.scanSegment(&r, f, seg, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) scanSegment(r *frameReader, f *os.File, seg segment, fn func([]byte) error) error {
	r.f, r.limit, r.base, r.buf = f, seg.size, headerSize, r.buf[:0]
	at := int64(headerSize)
	for at < seg.size {
		r.raEnd = at + scanChunk
		p, st, err := r.frameAt(at, -1)
		if err != nil {
			return fmt.Errorf("spool: scan: %w", err)
		}
		if st != frameOK {
			if at, err = s.skipCorrupt(f, seg.id, at, seg.size); err != nil {
				return err
			}
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
		at += frameHeader + int64(len(p))
	}
	return nil
}
