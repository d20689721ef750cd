package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const (
	defaultSegmentBytes   = 64 << 20
	defaultMaxBytes       = 10 << 30
	defaultWarnRatio      = 0.8
	defaultMaxRecordBytes = 1 << 20

	// maxSpareBuffer bounds the group buffer kept for reuse after a burst.
	maxSpareBuffer = 16 << 20
)

var (
	// ErrFull is returned (wrapped) by Submit and Append when accepting the
	// record would take the spool past Options.MaxBytes. It clears once
	// consumers ack and segments are deleted.
	ErrFull = errors.New("spool: full")
	// ErrClosed is returned (wrapped) by every operation on a closed Spool,
	// and by a Cursor.Next that is blocked when the Spool is closed.
	ErrClosed = errors.New("spool: closed")
	// ErrTooLarge is returned (wrapped) by Submit and Append for a payload
	// longer than Options.MaxRecordBytes.
	ErrTooLarge = errors.New("spool: record too large")
)

// Options configures a Spool. The zero value of every field but Dir selects
// its default.
type Options struct {
	// Dir holds the segments and checkpoints; it is created if missing.
	Dir string
	// SegmentBytes is the size past which a new segment file is started;
	// default 64 MiB. A segment may exceed it by at most one group commit.
	SegmentBytes int64
	// MaxBytes is the disk ceiling for all segment files plus submitted but
	// uncommitted records; Submit fails with ErrFull beyond it. Default
	// 10 GiB. A new segment's 16-byte header may take the total that far
	// above it.
	MaxBytes int64
	// WarnRatio is the fraction of MaxBytes at which a warning is logged,
	// once per crossing (re-armed when usage falls below it); default 0.8.
	WarnRatio float64
	// MaxRecordBytes is the largest payload Submit accepts; larger ones get
	// ErrTooLarge. Default 1 MiB.
	MaxRecordBytes int
	// NoSync skips every fsync. Appends are then NOT durable; it exists only
	// for benchmarks that measure what fsync costs.
	NoSync bool
	// Logger receives recovery, corruption and usage events; the zero value
	// is used as given.
	Logger zerolog.Logger
	// Registerer receives the urbanwatch_spool_* metrics. Nil: the metrics
	// are created but registered nowhere. They are unregistered by Close.
	Registerer prometheus.Registerer
}

// Spool is a durable append-only queue in one directory. All methods are safe
// for concurrent use.
type Spool struct {
	opts  Options
	log   zerolog.Logger
	m     *metrics
	lockF *os.File

	// Owned by the committer goroutine (and by Open before it starts).
	active     *os.File
	activeID   uint64
	activeSize int64 // bytes of the active segment that are written and synced

	wake     chan struct{} // cap 1: work for the committer
	stopped  chan struct{} // closed when the committer exits
	closedCh chan struct{} // closed by Close
	doneCh   chan struct{} // always closed; for Commits that fail in Submit

	closedFlag atomic.Bool
	syncs      atomic.Uint64 // group commits written, for tests and benchmarks

	cursorMu sync.Mutex // serialises Cursor creation

	mu             sync.Mutex
	closed         bool
	failed         error // sticky: a failed fsync leaves the spool unusable
	pending        []byte
	spare          []byte
	pendingCommit  *Commit
	pendingRecords int
	inflight       int64
	segs           []segment // oldest first; the last is the active segment
	diskBytes      int64     // sum of segs[i].size
	records        uint64
	notify         chan struct{} // closed and replaced after every commit
	cursors        map[string]*Cursor
	corrupt        map[Position]int64 // corrupt region start -> resync offset
	warned         bool
}

// segment describes one segment file. For the active segment, size is the
// committed (written and synced) size; for sealed ones it is final.
type segment struct {
	id   uint64
	size int64 // file size including the header
	base int64 // logical offset: record bytes in older segments since Open
}

// Commit is the completion of one group commit, shared by every record
// submitted into that group.
type Commit struct {
	done chan struct{}
	err  error
}

// Wait blocks until the records of this Commit are written and fsync'd, and
// returns nil, or until that failed, and returns the error. A Commit returned
// by Submit with ErrFull, ErrTooLarge or ErrClosed returns that at once.
func (c *Commit) Wait() error {
	<-c.done
	return c.err
}

// Done returns a channel that is closed when Wait would return.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Open opens (creating if needed) the spool in opts.Dir, recovers its
// segments and checkpoints (see the package doc) and starts the committer
// goroutine. Close releases it.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: open: Options.Dir is empty")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.WarnRatio <= 0 {
		opts.WarnRatio = defaultWarnRatio
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = defaultMaxRecordBytes
	}
	if opts.MaxRecordBytes > math.MaxUint32-frameHeader {
		opts.MaxRecordBytes = math.MaxUint32 - frameHeader
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s := &Spool{
		opts:     opts,
		log:      opts.Logger,
		m:        newMetrics(),
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		closedCh: make(chan struct{}),
		doneCh:   make(chan struct{}),
		notify:   make(chan struct{}),
		cursors:  make(map[string]*Cursor),
		corrupt:  make(map[Position]int64),
	}
	close(s.doneCh)
	lockF, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s.lockF = lockF
	if err := s.m.register(opts.Registerer); err != nil {
		unlockDir(lockF)
		return nil, err
	}
	if err := s.recover(); err != nil {
		if s.active != nil {
			_ = s.active.Close()
		}
		s.m.unregister(opts.Registerer)
		unlockDir(lockF)
		return nil, err
	}
	go s.run()
	return s, nil
}

// recover loads the segments, repairs the last one, loads the checkpoints and
// applies retention. It runs before the committer starts.
func (s *Spool) recover() error {
	dir := s.opts.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", dir, err)
	}
	var ids []uint64
	var ckpts []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case filepath.Ext(name) == ".tmp":
			// An interrupted checkpoint write; the previous checkpoint stands.
			_ = os.Remove(filepath.Join(dir, name))
		case e.Type().IsRegular() && isSegmentName(name):
			id, err := parseSegmentName(name)
			if err != nil {
				return fmt.Errorf("spool: open %s: %w", dir, err)
			}
			ids = append(ids, id)
		case e.Type().IsRegular() && isCheckpointName(name):
			ckpts = append(ckpts, name)
		}
	}
	slices.Sort(ids)

	var base int64
	for i, id := range ids {
		last := i == len(ids)-1
		size, err := s.checkSegment(id, last)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, segment{id: id, size: size, base: base})
		base += size - headerSize
		s.diskBytes += size
	}
	if len(s.segs) == 0 {
		f, err := createSegment(dir, 1, !s.opts.NoSync)
		if err != nil {
			return err
		}
		s.active, s.activeID, s.activeSize = f, 1, headerSize
		s.segs = append(s.segs, segment{id: 1, size: headerSize})
		s.diskBytes = headerSize
	} else {
		if err := s.recoverTail(); err != nil {
			return err
		}
	}

	for _, name := range ckpts {
		if err := s.loadCheckpoint(name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.retireAndUnlock()
	return nil
}

// retireAndUnlock, called with s.mu held, takes the segments every cursor
// has passed off the books, updates the gauges, releases s.mu, and then
// deletes those files and logs a crossing of the usage warning — the disk
// work done outside the lock.
func (s *Spool) retireAndUnlock() {
	dead := s.collectLocked()
	warn := s.updateGaugesLocked()
	s.mu.Unlock()
	s.removeSegments(dead)
	s.logUsage(warn)
}

// checkSegment validates a segment's header and returns its size. A last
// segment whose header never made it to disk is re-initialised.
func (s *Spool) checkSegment(id uint64, last bool) (int64, error) {
	path := segmentPath(s.opts.Dir, id)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("spool: open segment %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("spool: stat segment %s: %w", path, err)
	}
	size := st.Size()
	var hdr [headerSize]byte
	var herr error
	if size < headerSize {
		herr = fmt.Errorf("short header (%d bytes)", size)
	} else if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("spool: read segment header %s: %w", path, err)
	} else {
		herr = checkHeader(hdr[:], id)
	}
	if herr == nil {
		return size, nil
	}
	if !last {
		return 0, fmt.Errorf("spool: segment %s: %w", path, herr)
	}
	// The last segment may have been created just before a crash. Only an
	// all-zero (or short) file is re-initialised; anything else might be a
	// future format or real data, and is refused rather than guessed at.
	if size >= headerSize {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("spool: read segment %s: %w", path, err)
		}
		for _, b := range data {
			if b != 0 {
				return 0, fmt.Errorf("spool: segment %s: %w", path, herr)
			}
		}
	}
	if err := writeHeaderAt(path, id, !s.opts.NoSync); err != nil {
		return 0, err
	}
	if size > 0 {
		s.m.truncated.Add(float64(size))
		s.log.Warn().Str("segment", path).Int64("bytes", size).Msg("spool: re-initialised segment with a torn header")
	}
	return headerSize, nil
}

// recoverTail scans the last segment, resynchronising past corrupt regions
// and truncating a torn tail, and opens it for appending.
func (s *Spool) recoverTail() error {
	last := &s.segs[len(s.segs)-1]
	path := segmentPath(s.opts.Dir, last.id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open segment %s: %w", path, err)
	}
	r := frameReader{f: f, limit: last.size, reuse: true}
	at := int64(headerSize)
	for at < last.size {
		r.raEnd = at + scanChunk
		p, st, err := r.frameAt(at, -1)
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: recover segment %s: %w", path, err)
		}
		if st == frameOK {
			at += frameHeader + int64(len(p))
			continue
		}
		next, found, skipped, err := resync(f, at, last.size)
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: recover segment %s: %w", path, err)
		}
		if found {
			s.recordCorrupt(last.id, at, next, skipped)
			at = next
			continue
		}
		// Torn tail: nothing valid follows; cut it.
		cut := last.size - at
		if err := f.Truncate(at); err != nil {
			f.Close()
			return fmt.Errorf("spool: truncate segment %s: %w", path, err)
		}
		if !s.opts.NoSync {
			if err := fdatasync(f); err != nil {
				f.Close()
				return fmt.Errorf("spool: sync segment %s: %w", path, err)
			}
		}
		s.m.truncated.Add(float64(cut))
		s.log.Warn().Str("segment", path).Int64("offset", at).Int64("bytes", cut).
			Msg("spool: truncated torn tail")
		s.diskBytes -= cut
		last.size = at
		break
	}
	s.active, s.activeID, s.activeSize = f, last.id, last.size
	return nil
}

// Submit copies payload into the next group commit and returns that group's
// Commit. It never waits for the disk. The returned Commit already carries an
// error (wrapping ErrTooLarge, ErrFull or ErrClosed) when the record was not
// accepted. Many records share one Commit.
func (s *Spool) Submit(payload []byte) *Commit {
	if len(payload) > s.opts.MaxRecordBytes {
		return s.failedCommit(fmt.Errorf("spool: submit %d-byte record (limit %d): %w",
			len(payload), s.opts.MaxRecordBytes, ErrTooLarge))
	}
	n := uint32(len(payload))
	crc := frameCRC(n, payload)
	size := int64(frameHeader + len(payload))

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.failedCommit(fmt.Errorf("spool: submit: %w", ErrClosed))
	}
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return s.failedCommit(err)
	}
	if used := s.diskBytes + int64(len(s.pending)) + s.inflight; used+size > s.opts.MaxBytes {
		s.mu.Unlock()
		s.m.rejectedFull.Inc()
		return s.failedCommit(fmt.Errorf("spool: submit %d bytes with %d of %d in use: %w",
			size, used, s.opts.MaxBytes, ErrFull))
	}
	s.pending = binary.LittleEndian.AppendUint32(s.pending, n)
	s.pending = binary.LittleEndian.AppendUint32(s.pending, crc)
	s.pending = append(s.pending, payload...)
	s.pendingRecords++
	c := s.pendingCommit
	if c == nil {
		c = &Commit{done: make(chan struct{})}
		s.pendingCommit = c
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return c
}

func (s *Spool) failedCommit(err error) *Commit { return &Commit{done: s.doneCh, err: err} }

// Append submits payload and waits for its group commit: when it returns nil
// the record is durable. It is Submit(payload).Wait().
func (s *Spool) Append(payload []byte) error { return s.Submit(payload).Wait() }

// run is the committer goroutine.
func (s *Spool) run() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		for len(s.pending) == 0 {
			if s.closed {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		buf, c, n := s.pending, s.pendingCommit, s.pendingRecords
		s.pending, s.spare = s.spare[:0], nil
		s.pendingCommit, s.pendingRecords = nil, 0
		s.inflight = int64(len(buf))
		failed := s.failed
		s.mu.Unlock()

		err := failed
		var took time.Duration
		if err == nil {
			start := time.Now()
			err = s.writeGroup(buf)
			took = time.Since(start)
		}

		s.mu.Lock()
		s.inflight = 0
		if cap(buf) <= maxSpareBuffer {
			s.spare = buf[:0]
		}
		var warn bool
		if err == nil {
			last := &s.segs[len(s.segs)-1]
			s.diskBytes += s.activeSize - last.size
			last.size = s.activeSize
			s.records += uint64(n)
			close(s.notify)
			s.notify = make(chan struct{})
			warn = s.updateGaugesLocked()
		}
		s.mu.Unlock()

		if err == nil {
			s.syncs.Add(1)
			s.m.appendedRecords.Add(float64(n))
			s.m.appendedBytes.Add(float64(len(buf) - n*frameHeader))
			s.m.commitSeconds.Observe(took.Seconds())
			s.m.commitRecords.Observe(float64(n))
			s.logUsage(warn)
		}
		c.err = err
		close(c.done)
	}
}

// writeGroup appends one group to the active segment (rolling first if it
// would grow past SegmentBytes) and syncs it.
func (s *Spool) writeGroup(buf []byte) error {
	if s.activeSize > headerSize && s.activeSize+int64(len(buf)) > s.opts.SegmentBytes {
		if err := s.roll(); err != nil {
			return err
		}
	}
	if _, err := s.active.WriteAt(buf, s.activeSize); err != nil {
		err = fmt.Errorf("spool: write segment %s: %w", s.active.Name(), err)
		// Cut the partial write so the next group starts on a frame boundary.
		if terr := s.active.Truncate(s.activeSize); terr != nil {
			s.setFailed(fmt.Errorf("%w; truncate after failed write: %w", err, terr))
		}
		return err
	}
	if !s.opts.NoSync {
		if err := fdatasync(s.active); err != nil {
			// After a failed fsync the page cache can no longer be trusted
			// to reach the disk; stop accepting rather than guess.
			err = fmt.Errorf("spool: sync segment %s: %w", s.active.Name(), err)
			s.setFailed(err)
			return err
		}
	}
	s.activeSize += int64(len(buf))
	return nil
}

func (s *Spool) setFailed(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	s.log.Error().Err(err).Msg("spool: write path failed; refusing further appends")
}

// roll seals the active segment and starts the next one.
func (s *Spool) roll() error {
	id := s.activeID + 1
	f, err := createSegment(s.opts.Dir, id, !s.opts.NoSync)
	if err != nil {
		return err
	}
	old := s.active
	s.active, s.activeID, s.activeSize = f, id, headerSize
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	s.segs = append(s.segs, segment{id: id, size: headerSize, base: last.base + last.size - headerSize})
	s.diskBytes += headerSize
	s.updateGaugesLocked()
	s.mu.Unlock()
	if err := old.Close(); err != nil {
		s.log.Warn().Err(err).Str("segment", old.Name()).Msg("spool: close sealed segment")
	}
	return nil
}

// updateGaugesLocked refreshes the size and lag gauges and reports whether a
// usage warning should be logged (a fresh crossing of WarnRatio).
func (s *Spool) updateGaugesLocked() bool {
	ratio := float64(s.diskBytes) / float64(s.opts.MaxBytes)
	s.m.bytes.Set(float64(s.diskBytes))
	s.m.segments.Set(float64(len(s.segs)))
	s.m.usage.Set(ratio)
	end := s.committedLogicalLocked()
	for _, c := range s.cursors {
		c.lag.Set(float64(end - s.logicalLocked(c.ack)))
	}
	if ratio < s.opts.WarnRatio {
		s.warned = false
		return false
	}
	if s.warned {
		return false
	}
	s.warned = true
	return true
}

func (s *Spool) logUsage(warn bool) {
	if !warn {
		return
	}
	st := s.Stats()
	s.log.Warn().Int64("bytes", st.Bytes).Int64("max_bytes", s.opts.MaxBytes).
		Float64("usage_ratio", st.UsageRatio).Msg("spool: disk usage above warning ratio")
}

// committedLogicalLocked is the logical offset just past the last committed
// record.
func (s *Spool) committedLogicalLocked() int64 {
	last := s.segs[len(s.segs)-1]
	return last.base + last.size - headerSize
}

// logicalLocked maps a position to a logical byte offset. Positions in
// deleted segments map to the start of the oldest retained one.
func (s *Spool) logicalLocked(p Position) int64 {
	i := s.segIndexLocked(p.Segment)
	if i == len(s.segs) {
		return s.committedLogicalLocked()
	}
	seg := s.segs[i]
	if seg.id != p.Segment {
		return seg.base
	}
	off := min(max(p.Offset, headerSize), seg.size)
	return seg.base + off - headerSize
}

// segIndexLocked returns the index of the first segment with id >= id.
func (s *Spool) segIndexLocked(id uint64) int {
	return sort.Search(len(s.segs), func(i int) bool { return s.segs[i].id >= id })
}

// collectLocked removes from s.segs the sealed segments every cursor has
// acked past, and returns them for deletion. With no cursors nothing is
// collected.
func (s *Spool) collectLocked() []segment {
	if len(s.cursors) == 0 {
		return nil
	}
	var dead []segment
	for len(s.segs) > 1 && s.passedByAllLocked(s.segs[0]) {
		dead = append(dead, s.segs[0])
		s.diskBytes -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	if len(dead) == 0 {
		return nil
	}
	s.segs = slices.Clip(slices.Clone(s.segs))
	oldest := Position{Segment: s.segs[0].id, Offset: headerSize}
	for _, c := range s.cursors {
		if c.ack.Segment < oldest.Segment {
			c.ack = oldest
		}
	}
	for p := range s.corrupt {
		if p.Segment < oldest.Segment {
			delete(s.corrupt, p)
		}
	}
	return dead
}

// passedByAllLocked reports whether every cursor has acked the whole of the
// sealed segment seg.
func (s *Spool) passedByAllLocked(seg segment) bool {
	for _, c := range s.cursors {
		if c.ack.Segment < seg.id || (c.ack.Segment == seg.id && c.ack.Offset < seg.size) {
			return false
		}
	}
	return true
}

// removeSegments deletes the files of collected segments.
func (s *Spool) removeSegments(dead []segment) {
	if len(dead) == 0 {
		return
	}
	for _, seg := range dead {
		path := segmentPath(s.opts.Dir, seg.id)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error().Err(err).Str("segment", path).Msg("spool: delete consumed segment")
		}
	}
	if !s.opts.NoSync {
		if err := syncDir(s.opts.Dir); err != nil {
			s.log.Warn().Err(err).Msg("spool: sync directory after deleting segments")
		}
	}
	s.log.Debug().Int("segments", len(dead)).Uint64("through", dead[len(dead)-1].id).Msg("spool: deleted consumed segments")
}

// Stats describes a Spool at one moment.
type Stats struct {
	Bytes      int64   // size of all segment files, headers included
	Segments   int     // number of segment files
	Records    uint64  // records committed since Open
	UsageRatio float64 // Bytes / Options.MaxBytes
}

// Stats returns the current sizes and counts.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Bytes:      s.diskBytes,
		Segments:   len(s.segs),
		Records:    s.records,
		UsageRatio: float64(s.diskBytes) / float64(s.opts.MaxBytes),
	}
}

// Close commits every record already submitted (their Commits complete
// normally), stops the committer and closes the files. Afterwards Submit
// fails with ErrClosed and Next returns ErrClosed. It reports a write-path
// failure that made the spool refuse appends. Closing twice is a no-op.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closedFlag.Store(true)
	close(s.closedCh)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	cursors := make([]*Cursor, 0, len(s.cursors))
	for _, c := range s.cursors {
		cursors = append(cursors, c)
	}
	s.mu.Unlock()
	<-s.stopped

	var errs []error
	s.mu.Lock()
	if s.failed != nil {
		errs = append(errs, s.failed)
	}
	s.mu.Unlock()
	if err := s.active.Close(); err != nil {
		errs = append(errs, fmt.Errorf("spool: close segment: %w", err))
	}
	for _, c := range cursors {
		c.closeFile()
	}
	s.m.unregister(s.opts.Registerer)
	unlockDir(s.lockF)
	return errors.Join(errs...)
}
