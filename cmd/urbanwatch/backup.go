package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
)

// backup copies the data dir of a running (or stopped) urbanwatch so that
// the copy opens as if the service had crashed at one moment during the
// copy: nothing acknowledged before the backup started is missing from it,
// and no consumer in it believes it has processed a record the copy lacks.
//
// It relies on how each store is written (storage/spool, alerting/store.go,
// app/rules.go):
//
//   - A spool (DATA_DIR/spool, and the alert journal DATA_DIR/alerts) only
//     appends to its segments, starts a new segment only after the previous
//     one is complete, moves its checkpoints forward only (atomic rename) and
//     deletes a segment only when every cursor has acked past it. So the
//     checkpoints are copied first and the segments after: every record a
//     copied checkpoint has not passed is still in a segment. Every segment
//     file is opened before anything is copied, so one the service deletes
//     meanwhile is still read; segments that appear during the copy are
//     picked up by listing again. The last segment may end in a torn frame
//     (a group commit being written); an incomplete frame is cut, as the
//     spool's recovery would.
//   - The rules snapshot (DATA_DIR/rules/state.snap) is written before the
//     rules acknowledge the telemetry it covers, and after the alert events
//     it implies are in the journal: it is copied after the telemetry
//     spool's checkpoints (so it is never older than them: the copy
//     re-evaluates at worst what a crash would) and before the journal (so
//     the journal holds every event the snapshot assumes was announced).
//   - The alert store (DATA_DIR/alerting/alerts.log) is an append-only log
//     of CRC-framed records whose torn tail is cut at open; it is copied
//     after the journal's checkpoints, so every journal event the copy's
//     "alerting" cursor has passed is in it. A compaction replaces it by
//     rename; the copy reads whichever complete file it opened.
//   - Trip logs, dead letters (JSON lines) are copied up to their last whole
//     line; evidence packets and other files are written once by rename and
//     copied as they are. *.tmp files and the spools' LOCK are skipped.
//
// A managed InfluxDB (DATA_DIR/influxdb, influx.url empty) is not copied:
// its files cannot be copied consistently while it runs. Back InfluxDB up
// with its own tools (influxd backup -portable), or stop urbanwatch, copy
// the whole data dir and start it again (docs/operations.md).
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file (names data_dir)")
	dataDir := fs.String("data-dir", "", "data dir to copy (overrides data_dir)")
	to := fs.String("to", "", "folder to write the copy to; must not exist or be empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("backup: -to DIR is required")
	}
	src := *dataDir
	if src == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		src = cfg.DataDir
	}
	start := time.Now()
	m, err := copyDataDir(ctx, src, *to)
	if err != nil {
		return fmt.Errorf("backup %s to %s: %w", src, *to, err)
	}
	fmt.Fprintf(stdout, "backup of %s in %s: %d files, %d bytes, %s\n", src, *to, m.Files, m.Bytes,
		time.Since(start).Round(time.Millisecond))
	for _, s := range m.Skipped {
		fmt.Fprintf(stdout, "  not copied: %s\n", s)
	}
	return nil
}

// backupManifest is written to BACKUP.json in the copy.
type backupManifest struct {
	Format   string    `json:"format"`
	Source   string    `json:"source"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Skipped  []string  `json:"skipped,omitempty"`
}

// backupHook is called between the steps of a backup; tests use it to let
// the service write (and roll segments) at the worst moments.
var backupHook = func(step string) {}

// The data dir's parts, in the order they are copied.
const (
	dirSpool    = "spool"
	dirRules    = "rules"
	dirJournal  = "alerts"
	dirAlerting = "alerting"
	dirInflux   = "influxdb"
	snapFile    = "state.snap"
	storeLog    = "alerts.log"
	manifest    = "BACKUP.json"
)

type copier struct {
	ctx      context.Context
	src, dst string
	m        backupManifest
	dirs     []string // created folders, synced at the end
}

func copyDataDir(ctx context.Context, src, dst string) (*backupManifest, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", src)
	}
	if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty", dst)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	c := &copier{ctx: ctx, src: src, dst: dst,
		m: backupManifest{Format: "urbanwatch-backup/1", Source: src, Started: time.Now().UTC()}}
	if err := c.mkdir(""); err != nil {
		return nil, err
	}
	// Hold every segment open first: a segment deleted during the copy is
	// still read.
	tele, err := c.openSpool(dirSpool)
	if err != nil {
		return nil, err
	}
	defer tele.close()
	journal, err := c.openSpool(dirJournal)
	if err != nil {
		return nil, err
	}
	defer journal.close()
	backupHook("opened")

	if err := tele.copy(); err != nil {
		return nil, err
	}
	backupHook("spool")
	if err := c.copyTree(dirRules, nil); err != nil {
		return nil, err
	}
	backupHook("rules")
	if err := journal.copy(); err != nil {
		return nil, err
	}
	backupHook("journal")
	if err := c.copyTree(dirAlerting, map[string]func(string, string) error{storeLog: c.copyFramed}); err != nil {
		return nil, err
	}
	backupHook("alerting")

	// Everything else: trip logs, evidence, dead letters, and whatever a
	// newer version keeps there.
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case name == dirSpool || name == dirJournal || name == dirRules || name == dirAlerting:
		case name == dirInflux:
			c.m.Skipped = append(c.m.Skipped, filepath.Join(src, name)+
				" (managed InfluxDB: back it up with influxd backup -portable, or stop urbanwatch and copy it)")
		case e.IsDir():
			if err := c.copyTree(name, nil); err != nil {
				return nil, err
			}
		case e.Type().IsRegular() && name != manifest:
			if err := c.copyPlain(name); err != nil {
				return nil, err
			}
		}
	}
	c.m.Finished = time.Now().UTC()
	b, _ := json.MarshalIndent(c.m, "", "  ")
	if err := c.writeFile(manifest, append(b, '\n')); err != nil {
		return nil, err
	}
	for _, d := range slices.Backward(c.dirs) {
		if err := syncPath(filepath.Join(dst, d)); err != nil {
			return nil, err
		}
	}
	return &c.m, nil
}

func (c *copier) mkdir(rel string) error {
	if err := os.MkdirAll(filepath.Join(c.dst, rel), 0o750); err != nil {
		return err
	}
	c.dirs = append(c.dirs, rel)
	return nil
}

// skip reports files a copy must not contain: interrupted atomic writes
// and the spools' lock file.
func skip(name string) bool { return strings.HasSuffix(name, ".tmp") || name == "LOCK" }

// copyTree copies the folder rel recursively, file by file; special names
// the file's copy function (default copyPlain).
func (c *copier) copyTree(rel string, special map[string]func(src, rel string) error) error {
	entries, err := os.ReadDir(filepath.Join(c.src, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.mkdir(rel); err != nil {
		return err
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		r := filepath.Join(rel, e.Name())
		switch {
		case skip(e.Name()):
		case e.IsDir():
			if err := c.copyTree(r, nil); err != nil {
				return err
			}
		case !e.Type().IsRegular():
		case special[e.Name()] != nil:
			if err := special[e.Name()](filepath.Join(c.src, r), r); err != nil {
				return err
			}
		default:
			if err := c.copyPlain(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyPlain copies one file; JSON lines files up to their last whole line.
func (c *copier) copyPlain(rel string) error {
	f, err := os.Open(filepath.Join(c.src, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile (rotated dead letters, old trips)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	out, n, err := c.create(rel, f)
	if err != nil {
		return err
	}
	keep := n
	if strings.HasSuffix(rel, ".jsonl") {
		keep, err = lastNewline(out, n)
		if err != nil {
			out.Close()
			return err
		}
	}
	return c.finish(out, n, keep)
}

// copyFramed copies the alert store's log, cutting an incomplete last frame
// (4-byte big-endian length, 4-byte CRC-32C, payload).
func (c *copier) copyFramed(src, rel string) error {
	f, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	out, n, err := c.create(rel, f)
	if err != nil {
		return err
	}
	keep, err := wholeFrames(out, 0, n, binary.BigEndian, false)
	if err != nil {
		out.Close()
		return err
	}
	return c.finish(out, n, keep)
}

// create copies everything readable from r into a new file rel in the copy
// and returns it open, with the number of bytes copied.
func (c *copier) create(rel string, r io.Reader) (*os.File, int64, error) {
	out, err := os.OpenFile(filepath.Join(c.dst, rel), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(out, r)
	if err != nil {
		out.Close()
		return nil, 0, fmt.Errorf("copy %s: %w", rel, err)
	}
	return out, n, nil
}

// finish cuts out to keep bytes (of n written), syncs and closes it.
func (c *copier) finish(out *os.File, n, keep int64) error {
	if keep < n {
		if err := out.Truncate(keep); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	c.m.Files++
	c.m.Bytes += keep
	return out.Close()
}

func (c *copier) writeFile(rel string, b []byte) error {
	out, n, err := c.create(rel, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	return c.finish(out, n, n)
}

// lastNewline returns the length of f's first n bytes up to and including
// the last '\n'.
func lastNewline(f *os.File, n int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := n; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameAfter reports whether a whole frame with a valid CRC starts
// anywhere in [from, n): the store's own recovery resynchronises to such a
// frame, so what lies before it is not a tail to cut.
func frameAfter(f *os.File, from, n int64, order binary.ByteOrder, spoolCRC bool) (bool, error) {
	if n-from < 8 {
		return false, nil
	}
	buf := make([]byte, n-from)
	if _, err := f.ReadAt(buf, from); err != nil {
		return false, err
	}
	for i := 0; i+8 <= len(buf); i++ {
		size := int(order.Uint32(buf[i : i+4]))
		if size > len(buf)-i-8 {
			continue
		}
		payload := buf[i+8 : i+8+size]
		var sum uint32
		if spoolCRC {
			sum = crc32.Update(crc32.Checksum(buf[i:i+4], castagnoli), castagnoli, payload)
		} else {
			sum = crc32.Checksum(payload, castagnoli)
		}
		if sum == order.Uint32(buf[i+4:i+8]) {
			return true, nil
		}
	}
	return false, nil
}

// wholeFrames walks the frames of f from off to n (length uint32, CRC-32C
// uint32, payload) and returns where an incomplete last frame starts, or n.
// spoolCRC selects the spool's CRC (over the length bytes and the payload)
// instead of the alert store's (payload only). A complete frame that fails
// its CRC is left for the store's own recovery to judge.
func wholeFrames(f *os.File, off, n int64, order binary.ByteOrder, spoolCRC bool) (int64, error) {
	var hdr [8]byte
	for off < n {
		if n-off < 8 {
			return off, nil
		}
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return 0, err
		}
		size := int64(order.Uint32(hdr[:4]))
		if off+8+size > n {
			// A torn tail, or a corrupt region the store resynchronised
			// past on open with acknowledged frames after it: cut only if
			// no whole frame follows.
			later, err := frameAfter(f, off+1, n, order, spoolCRC)
			if err != nil {
				return 0, err
			}
			if later {
				return n, nil
			}
			return off, nil
		}
		payload := make([]byte, size)
		if _, err := f.ReadAt(payload, off+8); err != nil {
			return 0, err
		}
		var sum uint32
		if spoolCRC {
			sum = crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, payload)
		} else {
			sum = crc32.Checksum(payload, castagnoli)
		}
		if sum != order.Uint32(hdr[4:]) {
			return n, nil
		}
		off += 8 + size
	}
	return n, nil
}

// spoolCopy is one spool folder being copied: every segment file held open.
type spoolCopy struct {
	c    *copier
	rel  string
	segs map[uint64]*os.File
}

const (
	segmentDigits = 20
	segmentSuffix = ".seg"
	segmentHeader = 16
)

func segmentID(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	return id, err == nil
}

// openSpool opens every segment of the spool in rel; nil if there is none.
func (c *copier) openSpool(rel string) (*spoolCopy, error) {
	s := &spoolCopy{c: c, rel: rel, segs: map[uint64]*os.File{}}
	if _, err := s.openNew(0); err != nil {
		return nil, err
	}
	return s, nil
}

// openNew opens the segments with an id above after that are not open yet
// and returns their ids in order.
func (s *spoolCopy) openNew(after uint64) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Join(s.c.src, s.rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		id, ok := segmentID(e.Name())
		if !ok || id <= after || s.segs[id] != nil || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(s.c.src, s.rel, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // consumed by every cursor and deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		s.segs[id] = f
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *spoolCopy) close() {
	for _, f := range s.segs {
		f.Close()
	}
}

// copy copies the checkpoints, then the segments, then anything else in the
// folder (the corrupt/ regions kept for inspection).
func (s *spoolCopy) copy() error {
	dir := filepath.Join(s.c.src, s.rel)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.c.mkdir(s.rel); err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cursor-") && strings.HasSuffix(e.Name(), ".ckpt") && e.Type().IsRegular() {
			if err := s.c.copyPlain(filepath.Join(s.rel, e.Name())); err != nil {
				return err
			}
		}
	}
	backupHook(s.rel + ": checkpoints")
	order := slices.Sorted(maps.Keys(s.segs))
	for i := 0; i < len(order); i++ {
		if err := s.c.ctx.Err(); err != nil {
			return err
		}
		id := order[i]
		rel := filepath.Join(s.rel, fmt.Sprintf("%0*d%s", segmentDigits, id, segmentSuffix))
		f := s.segs[id]
		out, n, err := s.c.create(rel, f)
		if err != nil {
			return err
		}
		keep := n
		if i == len(order)-1 {
			backupHook(s.rel + ": last segment")
			newer, err := s.openNew(id)
			if err != nil {
				out.Close()
				return err
			}
			if len(newer) > 0 {
				// A newer segment exists, so this one is complete now:
				// copy the rest of it.
				more, err := io.Copy(out, f)
				if err != nil {
					out.Close()
					return fmt.Errorf("copy %s: %w", rel, err)
				}
				n += more
				keep = n
				order = append(order, newer...)
			} else if keep, err = wholeFrames(out, segmentHeader, n, binary.LittleEndian, true); err != nil {
				out.Close()
				return err
			}
			keep = max(keep, min(n, segmentHeader))
		}
		if err := s.c.finish(out, n, keep); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := s.c.copyTree(filepath.Join(s.rel, e.Name()), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncPath fsyncs a file or folder.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
