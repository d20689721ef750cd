package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ---- helpers ---------------------------------------------------------------

// rec is the i-th test payload; lengths vary.
func rec(i int) []byte {
	return []byte(fmt.Sprintf("record-%05d-%s", i, strings.Repeat("x", i%7)))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type env struct {
	t   *testing.T
	reg *prometheus.Registry
	log *syncBuffer
}

func newEnv(t *testing.T) *env {
	return &env{t: t, reg: prometheus.NewRegistry(), log: &syncBuffer{}}
}

// open opens a spool on a fresh registry and logger and closes it at cleanup.
func (e *env) open(o Options) *Spool {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	o.Registerer = e.reg
	o.Logger = zerolog.New(e.log)
	s, err := Open(o)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// metric sums the values (or histogram sample counts) of a gathered family.
func (e *env) metric(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("Gather: %v", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return v
}

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append(rec(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// timeout bounds a test that would otherwise hang; it is never used to wait
// for a condition.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readN reads exactly n records from c with batches of at most batch records.
func readN(t *testing.T, c *Cursor, n, batch int) ([][]byte, Batch) {
	t.Helper()
	ctx := timeout(t)
	var out [][]byte
	var last Batch
	for len(out) < n {
		b, err := c.Next(ctx, min(batch, n-len(out)), 0)
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, b.Records...)
		last = b
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out, last
}

func wantRecords(t *testing.T, got [][]byte, idx []int) {
	t.Helper()
	if len(got) != len(idx) {
		t.Fatalf("got %d records, want %d", len(got), len(idx))
	}
	for k, i := range idx {
		if !bytes.Equal(got[k], rec(i)) {
			t.Fatalf("record %d = %q, want %q", k, got[k], rec(i))
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func scanAll(t *testing.T, s *Spool) [][]byte {
	t.Helper()
	var out [][]byte
	if err := s.Scan(func(p []byte) error {
		out = append(out, slices.Clone(p))
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// frameLoc locates one record in the segment files.
type frameLoc struct {
	path string
	off  int64
	n    int
}

// frameLocs parses every (valid) segment file in order.
func frameLocs(t *testing.T, dir string) []frameLoc {
	t.Helper()
	var locs []frameLoc
	for _, path := range segFiles(t, dir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(headerSize); off < int64(len(data)); {
			n := int(binary.LittleEndian.Uint32(data[off:]))
			locs = append(locs, frameLoc{path, off, n})
			off += frameHeader + int64(n)
		}
	}
	return locs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

// ---- tests -------------------------------------------------------------------

func TestRoundTripAcrossSegmentsAndRetention(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	s := e.open(Options{Dir: dir, SegmentBytes: 256})
	a, err := s.Cursor("influx")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Cursor("rules")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Cursor("influx"); again != a {
		t.Fatal("Cursor with the same name returned a different *Cursor")
	}
	const n = 60
	appendN(t, s, 0, n)
	st := s.Stats()
	if st.Segments < 4 || st.Records != n {
		t.Fatalf("Stats = %+v, want >= 4 segments and %d records", st, n)
	}
	if len(segFiles(t, dir)) != st.Segments {
		t.Fatalf("%d segment files, Stats says %d", len(segFiles(t, dir)), st.Segments)
	}
	wantRecords(t, scanAll(t, s), seq(0, n))

	got, last := readN(t, a, n, 7)
	wantRecords(t, got, seq(0, n))
	if err := a.Ack(last); err != nil {
		t.Fatal(err)
	}
	if a.LagBytes() != 0 {
		t.Fatalf("influx LagBytes = %d after acking everything", a.LagBytes())
	}
	if s.Stats().Segments != st.Segments {
		t.Fatalf("segments deleted while cursor rules has acked nothing: %d -> %d", st.Segments, s.Stats().Segments)
	}
	if b.LagBytes() <= 0 || e.metric("urbanwatch_spool_lag_bytes") != float64(b.LagBytes()) {
		t.Fatalf("rules LagBytes = %d, lag gauge sum = %v", b.LagBytes(), e.metric("urbanwatch_spool_lag_bytes"))
	}

	got, half := readN(t, b, n/2, 5)
	wantRecords(t, got, seq(0, n/2))
	if err := b.Ack(half); err != nil {
		t.Fatal(err)
	}
	mid := s.Stats().Segments
	if mid >= st.Segments || mid <= 1 {
		t.Fatalf("after rules acked half: %d segments (was %d)", mid, st.Segments)
	}
	got, last = readN(t, b, n-n/2, 5)
	wantRecords(t, got, seq(n/2, n))
	if err := b.Ack(last); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != 1 || len(segFiles(t, dir)) != 1 {
		t.Fatalf("after both acked everything: Stats %+v, files %v", st, segFiles(t, dir))
	}
	if got := e.metric("urbanwatch_spool_segments"); got != 1 {
		t.Fatalf("segments gauge = %v", got)
	}
	// Appends continue; a cursor created now starts at the oldest retained record.
	appendN(t, s, n, n+3)
	late, err := s.Cursor("late")
	if err != nil {
		t.Fatal(err)
	}
	retained := scanAll(t, s)
	got, _ = readN(t, late, len(retained), 10)
	if !slices.EqualFunc(got, retained, bytes.Equal) || !bytes.Equal(got[len(got)-1], rec(n+2)) {
		t.Fatalf("late cursor read %q, want the retained records %q", got, retained)
	}
	if e.metric("urbanwatch_spool_appended_records_total") != n+3 {
		t.Fatalf("appended_records_total = %v", e.metric("urbanwatch_spool_appended_records_total"))
	}
}

func TestNoCursorsKeepsEverything(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	s := e.open(Options{Dir: dir, SegmentBytes: 128})
	appendN(t, s, 0, 40)
	segs := s.Stats().Segments
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(Options{Dir: dir, SegmentBytes: 128})
	if s.Stats().Segments != segs {
		t.Fatalf("segments %d -> %d across reopen without cursors", segs, s.Stats().Segments)
	}
	wantRecords(t, scanAll(t, s), seq(0, 40))
}

func TestConcurrentAppendSharesFsync(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir(), SegmentBytes: 64 << 10})
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 100, 100
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				if err := s.Append([]byte(fmt.Sprintf("%03d:%05d", g, i))); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	total := writers * each
	got, _ := readN(t, c, total, 1000)
	next := make([]int, writers)
	for _, p := range got {
		var g, i int
		if _, err := fmt.Sscanf(string(p), "%03d:%05d", &g, &i); err != nil {
			t.Fatalf("bad record %q", p)
		}
		if i != next[g] {
			t.Fatalf("writer %d: got record %d, want %d (lost, duplicated or reordered)", g, i, next[g])
		}
		next[g]++
	}
	syncs := s.syncs.Load()
	t.Logf("%d records in %d group commits (%.1f records/fsync)", total, syncs, float64(total)/float64(syncs))
	if syncs >= uint64(total) {
		t.Fatalf("%d group commits for %d records: fsyncs are not shared", syncs, total)
	}
	if e.metric("urbanwatch_spool_commit_records") != float64(syncs) {
		t.Fatalf("commit_records samples = %v, want %d", e.metric("urbanwatch_spool_commit_records"), syncs)
	}
	if s.Stats().Records != uint64(total) {
		t.Fatalf("Stats.Records = %d", s.Stats().Records)
	}
}

func TestSubmitAndDone(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir()})
	var commits []*Commit
	for i := range 50 {
		commits = append(commits, s.Submit(rec(i)))
	}
	for _, c := range commits {
		<-c.Done()
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	wantRecords(t, scanAll(t, s), seq(0, 50))
}

func TestTornTail(t *testing.T) {
	const n = 20
	src := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: src, SegmentBytes: 200})
	appendN(t, s, 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	locs := frameLocs(t, src)
	lastRec := locs[n-1]
	end := lastRec.off + frameHeader + int64(lastRec.n)

	check := func(t *testing.T, dir string, wantTruncated int64) {
		e := newEnv(t)
		s := e.open(Options{Dir: dir, SegmentBytes: 200})
		if got := e.metric("urbanwatch_spool_truncated_bytes_total"); got != float64(wantTruncated) {
			t.Fatalf("truncated_bytes_total = %v, want %d", got, wantTruncated)
		}
		if wantTruncated > 0 && !strings.Contains(e.log.String(), "torn tail") {
			t.Fatalf("truncation not logged: %s", e.log)
		}
		wantRecords(t, scanAll(t, s), seq(0, n-1))
		if err := s.Append(rec(1000)); err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		c, err := s.Cursor("c")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readN(t, c, n, 3)
		wantRecords(t, got, append(seq(0, n-1), 1000))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// And it stays consistent across another restart.
		s = e.open(Options{Dir: dir, SegmentBytes: 200})
		wantRecords(t, scanAll(t, s), append(seq(0, n-1), 1000))
	}

	for cut := lastRec.off; cut < end; cut++ {
		t.Run(fmt.Sprintf("cut%d", cut), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			path := filepath.Join(dir, filepath.Base(lastRec.path))
			if err := os.Truncate(path, cut); err != nil {
				t.Fatal(err)
			}
			check(t, dir, cut-lastRec.off)
		})
		if t.Failed() {
			break
		}
	}

	t.Run("zero-filled tail", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, src, dir)
		path := filepath.Join(dir, filepath.Base(lastRec.path))
		if err := os.Truncate(path, lastRec.off); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		check(t, dir, 4096)
	})
}

func TestTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: dir})
	appendN(t, s, 0, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash right after creating the next segment: its header is torn.
	if err := os.WriteFile(segmentPath(dir, 2), []byte{'U', 'W', 'S'}, 0o640); err != nil {
		t.Fatal(err)
	}
	s = e.open(Options{Dir: dir})
	if got := e.metric("urbanwatch_spool_truncated_bytes_total"); got != 3 {
		t.Fatalf("truncated_bytes_total = %v, want 3", got)
	}
	appendN(t, s, 5, 8)
	wantRecords(t, scanAll(t, s), seq(0, 8))
}

func TestCorruptRecordsAreSkippedAndSaved(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: dir, SegmentBytes: 200})
	appendN(t, s, 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	locs := frameLocs(t, dir)
	files := segFiles(t, dir)
	if len(files) < 4 {
		t.Fatalf("want at least 4 segments, have %d", len(files))
	}
	lastFile := files[len(files)-1]
	var inLast []int
	for i, l := range locs {
		if l.path == lastFile {
			inLast = append(inLast, i)
		}
	}
	if len(inLast) < 3 {
		t.Fatalf("last segment holds %d records, want >= 3", len(inLast))
	}
	bad := []int{
		1, // sealed first segment: payload bit rot
		slices.IndexFunc(locs, func(l frameLoc) bool { return l.path == files[2] }), // sealed: corrupt length
		inLast[1], // active segment, valid records after it: found at Open
	}
	flipByte(t, locs[bad[0]].path, locs[bad[0]].off+frameHeader+3)
	flipByte(t, locs[bad[1]].path, locs[bad[1]].off+1)
	flipByte(t, locs[bad[2]].path, locs[bad[2]].off+frameHeader)
	var good []int
	for i := range n {
		if !slices.Contains(bad, i) {
			good = append(good, i)
		}
	}

	s = e.open(Options{Dir: dir, SegmentBytes: 200})
	if got := e.metric("urbanwatch_spool_corrupt_records_total"); got != 1 {
		t.Fatalf("after Open corrupt_records_total = %v, want 1 (the active segment is scanned)", got)
	}
	if got := e.metric("urbanwatch_spool_truncated_bytes_total"); got != 0 {
		t.Fatalf("mid-file corruption was truncated: %v bytes", got)
	}
	wantRecords(t, scanAll(t, s), good)
	if got := e.metric("urbanwatch_spool_corrupt_records_total"); got != 3 {
		t.Fatalf("after Scan corrupt_records_total = %v, want 3", got)
	}
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readN(t, c, len(good), 4)
	wantRecords(t, got, good)
	if got := e.metric("urbanwatch_spool_corrupt_records_total"); got != 3 {
		t.Fatalf("regions counted again by Next: corrupt_records_total = %v", got)
	}
	saved, err := os.ReadDir(filepath.Join(dir, corruptDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 3 {
		t.Fatalf("corrupt/ holds %d files, want 3", len(saved))
	}
	for _, i := range bad {
		l := locs[i]
		id, _ := parseSegmentName(filepath.Base(l.path))
		name := fmt.Sprintf("%0*d-%d.bin", segmentDigits, id, l.off)
		data, err := os.ReadFile(filepath.Join(dir, corruptDir, name))
		if err != nil {
			t.Fatalf("record %d not saved: %v", i, err)
		}
		if len(data) != frameHeader+l.n {
			t.Fatalf("saved %d bytes for record %d, want its frame (%d)", len(data), i, frameHeader+l.n)
		}
	}
	// The spool keeps working after the corrupt region.
	appendN(t, s, n, n+2)
	got, _ = readN(t, c, 2, 4)
	wantRecords(t, got, seq(n, n+2))
}

func TestRestartMidDrain(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: dir, SegmentBytes: 120})
	appendN(t, s, 0, 10)
	c, err := s.Cursor("influx")
	if err != nil {
		t.Fatal(err)
	}
	got, b := readN(t, c, 4, 4)
	wantRecords(t, got, seq(0, 4))
	if err := c.Ack(b); err != nil {
		t.Fatal(err)
	}
	got, _ = readN(t, c, 4, 4) // processed but never acked
	wantRecords(t, got, seq(4, 8))

	c.Rewind()
	got, _ = readN(t, c, 2, 2)
	wantRecords(t, got, seq(4, 6))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(Options{Dir: dir, SegmentBytes: 120})
	c, err = s.Cursor("influx")
	if err != nil {
		t.Fatal(err)
	}
	got, b = readN(t, c, 6, 100)
	wantRecords(t, got, seq(4, 10))
	if err := c.Ack(b); err != nil {
		t.Fatal(err)
	}
	if c.LagBytes() != 0 {
		t.Fatalf("LagBytes = %d", c.LagBytes())
	}
	// Acking an older batch again is a no-op.
	if err := c.Ack(Batch{End: Position{Segment: b.End.Segment, Offset: headerSize}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(Batch{End: Position{Segment: b.End.Segment + 5, Offset: 99}}); err == nil {
		t.Fatal("Ack of a position past the data succeeded")
	}
}

func TestCheckpointRecovery(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t)
	opts := Options{Dir: dir, SegmentBytes: 120}
	s := e.open(opts)
	appendN(t, s, 0, 30)
	a, _ := s.Cursor("a")
	b, _ := s.Cursor("b")
	_, ab := readN(t, a, 30, 100)
	if err := a.Ack(ab); err != nil {
		t.Fatal(err)
	}
	_, bb := readN(t, b, 10, 100)
	if err := b.Ack(bb); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Checkpoints are loaded by Open: "b" holds back deletion even before
	// anyone asks for it.
	s = e.open(opts)
	segs := s.Stats().Segments
	a, _ = s.Cursor("a")
	appendN(t, s, 30, 31)
	got, ab := readN(t, a, 1, 100)
	wantRecords(t, got, []int{30})
	if err := a.Ack(ab); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Segments < segs {
		t.Fatalf("segments still needed by b were deleted: %d -> %d", segs, s.Stats().Segments)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A corrupt checkpoint falls back to the oldest retained record, loudly.
	if err := os.WriteFile(filepath.Join(dir, "cursor-b.ckpt"), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	s = e.open(opts)
	if !strings.Contains(e.log.String(), "corrupt checkpoint") {
		t.Fatalf("corrupt checkpoint not logged: %s", e.log)
	}
	b, err := s.Cursor("b")
	if err != nil {
		t.Fatal(err)
	}
	first := scanAll(t, s)
	if len(first) < 21 {
		t.Fatalf("only %d records retained; b had acked just 10 of 31", len(first))
	}
	got, bb = readN(t, b, len(first), 100)
	if !slices.EqualFunc(got, first, bytes.Equal) {
		t.Fatalf("after corrupt checkpoint got %q, want every retained record %q", got, first)
	}
	if err := b.Ack(bb); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Segments != 1 {
		t.Fatalf("segments = %d after everyone acked everything", s.Stats().Segments)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A checkpoint pointing into a deleted segment moves to the oldest one.
	c := &Cursor{s: s, path: filepath.Join(dir, "cursor-b.ckpt")}
	if err := c.writeCheckpoint(Position{Segment: 1, Offset: headerSize}); err != nil {
		t.Fatal(err)
	}
	s = e.open(opts)
	appendN(t, s, 31, 33)
	retained := scanAll(t, s)
	if !bytes.Equal(retained[len(retained)-1], rec(32)) {
		t.Fatalf("retained %q", retained)
	}
	b, _ = s.Cursor("b")
	got, _ = readN(t, b, len(retained), 100)
	if !slices.EqualFunc(got, retained, bytes.Equal) {
		t.Fatalf("checkpoint into a deleted segment: got %q, want %q", got, retained)
	}

	// A missing checkpoint: a new cursor starts at the oldest retained record.
	n, _ := s.Cursor("new")
	got, _ = readN(t, n, len(retained), 100)
	if !slices.EqualFunc(got, retained, bytes.Equal) {
		t.Fatalf("new cursor: got %q, want %q", got, retained)
	}

	if _, err := s.Cursor("../evil"); err == nil {
		t.Fatal("cursor name with a path separator accepted")
	}
}

func TestFullAndWarnRatio(t *testing.T) {
	e := newEnv(t)
	opts := Options{Dir: t.TempDir(), SegmentBytes: 512, MaxBytes: 2048, WarnRatio: 0.5}
	s := e.open(opts)
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{'p'}, 100)
	fill := func() int {
		for i := 0; ; i++ {
			err := s.Append(payload)
			if errors.Is(err, ErrFull) {
				return i
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if i > 100 {
				t.Fatal("never got ErrFull")
			}
		}
	}
	n := fill()
	if st := s.Stats(); st.Bytes > opts.MaxBytes || st.Bytes+frameHeader+100 <= opts.MaxBytes-headerSize {
		t.Fatalf("full at %+v after %d records", st, n)
	}
	if got := e.metric("urbanwatch_spool_rejected_full_total"); got != 1 {
		t.Fatalf("rejected_full_total = %v", got)
	}
	if got := e.metric("urbanwatch_spool_usage_ratio"); got < 0.9 {
		t.Fatalf("usage_ratio = %v", got)
	}
	warnings := func() int { return strings.Count(e.log.String(), "disk usage above warning ratio") }
	if warnings() != 1 {
		t.Fatalf("%d usage warnings, want 1:\n%s", warnings(), e.log)
	}
	_, b := readN(t, c, n, 1000)
	if err := c.Ack(b); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.UsageRatio >= 0.5 {
		t.Fatalf("after ack: %+v", st)
	}
	if err := s.Append(payload); err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	fill()
	if warnings() != 2 {
		t.Fatalf("%d usage warnings after a second crossing, want 2", warnings())
	}
}

func TestTooLargeAndClosed(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir(), MaxRecordBytes: 64})
	if err := s.Append(make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append 65 bytes: %v, want ErrTooLarge", err)
	}
	if err := s.Append(make([]byte, 64)); err != nil {
		t.Fatalf("Append 64 bytes: %v", err)
	}
	if err := s.Append(nil); err != nil {
		t.Fatalf("Append empty: %v", err)
	}
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, b := readN(t, c, 2, 10); len(b.Records) == 0 {
		t.Fatal("no records")
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background(), 10, 0)
		blocked <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Next after Close: %v, want ErrClosed", err)
	}
	if err := s.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := c.Next(context.Background(), 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := s.Cursor("d"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Cursor after Close: %v", err)
	}
	if err := s.Scan(func([]byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseCommitsPending(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: dir})
	var commits []*Commit
	for i := range 100 {
		commits = append(commits, s.Submit(rec(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if err := c.Wait(); err != nil {
			t.Fatalf("Commit submitted before Close: %v", err)
		}
	}
	s = e.open(Options{Dir: dir})
	wantRecords(t, scanAll(t, s), seq(0, 100))
}

func TestNextBlocksUntilDataAndHonoursContext(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir()})
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		b   Batch
		err error
	}
	res := make(chan result, 1)
	go func() {
		b, err := c.Next(timeout(t), 10, 0)
		res <- result{b, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("Next returned before any append: %+v", r)
	default:
	}
	if err := s.Append(rec(1)); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantRecords(t, r.b.Records, []int{1})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := c.Next(ctx, 10, 0)
		res <- result{err: err}
	}()
	cancel()
	if r := <-res; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", r.err)
	}
}

func TestScanStopsAtError(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir(), SegmentBytes: 100})
	appendN(t, s, 0, 20)
	stop := errors.New("stop")
	var seen int
	err := s.Scan(func([]byte) error {
		seen++
		if seen == 7 {
			return stop
		}
		return nil
	})
	if err != stop || seen != 7 {
		t.Fatalf("Scan = %v after %d records", err, seen)
	}
}

func TestMetricsPerInstanceAndDirLock(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	e1, e2 := newEnv(t), newEnv(t)
	s1 := e1.open(Options{Dir: dir1})
	s2 := e2.open(Options{Dir: dir2})
	for _, s := range []*Spool{s1, s2} {
		if _, err := s.Cursor("c"); err != nil {
			t.Fatal(err)
		}
		appendN(t, s, 0, 3)
	}
	want := []string{"bytes", "segments", "usage_ratio", "appended_records_total", "appended_bytes_total",
		"commit_seconds", "commit_records", "rejected_full_total", "truncated_bytes_total",
		"corrupt_records_total", "lag_bytes"}
	for _, e := range []*env{e1, e2} {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		for _, w := range want {
			if !slices.Contains(names, "urbanwatch_spool_"+w) {
				t.Fatalf("metric urbanwatch_spool_%s missing from %v", w, names)
			}
		}
		if got := e.metric("urbanwatch_spool_appended_records_total"); got != 3 {
			t.Fatalf("appended_records_total = %v", got)
		}
	}
	if _, err := Open(Options{Dir: dir1}); err == nil {
		t.Fatal("a second Open of the same Dir succeeded")
	}
	// Close unregisters, so the registry can be reused on reopen.
	reg := e1.reg
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir1, Registerer: reg})
	if err != nil {
		t.Fatalf("reopen on the same registry: %v", err)
	}
	if _, err := Open(Options{Dir: t.TempDir(), Registerer: reg}); err == nil {
		t.Fatal("two open spools on one registry")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Nil Registerer works too.
	s, err = Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownSegmentVersionIsRefused(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t)
	s := e.open(Options{Dir: dir})
	appendN(t, s, 0, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flipByte(t, segmentPath(dir, 1), 4) // version field
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("Open with an unknown segment version: %v", err)
	}
}

func TestFrameCRCCoversLength(t *testing.T) {
	payload := []byte("hello, flood sensor")
	var lenBytes [4]byte
	binary.LittleEndian.PutUint32(lenBytes[:], uint32(len(payload)))
	want := crc32c(append(lenBytes[:], payload...))
	if got := frameCRC(uint32(len(payload)), payload); got != want {
		t.Fatalf("frameCRC = %08x, want CRC-32C(length||payload) = %08x", got, want)
	}
	if frameCRC(uint32(len(payload))+1, payload) == want {
		t.Fatal("CRC does not depend on the length")
	}
}

func TestNextLimitsAndLargeRecords(t *testing.T) {
	e := newEnv(t)
	s := e.open(Options{Dir: t.TempDir(), SegmentBytes: 8 << 20})
	big := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 200<<10) }
	// Small records whose total exceeds the first read, then records larger
	// than it.
	appendN(t, s, 0, 3000)
	for i := range 3 {
		if err := s.Append(big(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Cursor("c")
	if err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t)
	// maxBytes smaller than one record still returns one record.
	b, err := c.Next(ctx, 10, 1)
	if err != nil || len(b.Records) != 1 {
		t.Fatalf("Next(10, 1) = %d records, %v", len(b.Records), err)
	}
	// maxBytes bounds the frame bytes of a batch.
	b, err = c.Next(ctx, 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	for _, r := range b.Records {
		size += frameHeader + len(r)
	}
	if size > 100 || len(b.Records) < 2 {
		t.Fatalf("Next(100, 100) returned %d records, %d frame bytes", len(b.Records), size)
	}
	c.Rewind()
	var got [][]byte
	for len(got) < 3003 {
		b, err := c.Next(ctx, 5000, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Records...)
	}
	wantRecords(t, got[:3000], seq(0, 3000))
	for i := range 3 {
		if !bytes.Equal(got[3000+i], big(i)) {
			t.Fatalf("large record %d corrupted", i)
		}
	}
	// Records are owned by the caller: appending to one must not clobber
	// the next.
	first := append(got[0], "!!!!!!!!"...)
	if !bytes.Equal(got[1], rec(1)) || !bytes.HasSuffix(first, []byte("!!!!!!!!")) {
		t.Fatal("records share writable capacity")
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	s := e.open(Options{Dir: dir})
	appendN(t, s, 0, 3)
	// Simulate an I/O failure: the committer's segment handle goes bad.
	if err := s.active.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(rec(3)); err == nil {
		t.Fatal("Append succeeded on a failed segment")
	}
	if err := s.Append(rec(4)); err == nil || errors.Is(err, ErrFull) {
		t.Fatalf("Append after a write-path failure: %v, want the sticky failure", err)
	}
	if !strings.Contains(e.log.String(), "refusing further appends") {
		t.Fatalf("failure not logged: %s", e.log)
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close did not report the failure")
	}
	// Nothing acknowledged was lost.
	s = e.open(Options{Dir: dir})
	wantRecords(t, scanAll(t, s), seq(0, 3))
}
