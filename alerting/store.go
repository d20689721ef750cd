package alerting

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// The store is an append-only log of framed records, each the whole of one
// alert after a change: the newest record of an id wins. A frame is a
// 4-byte big-endian length, a 4-byte CRC-32C of the payload, and the JSON
// payload. A torn or corrupt tail (a crash mid-write) is cut off at load;
// every change a caller was told is durable was synced before. Compaction
// rewrites the log with the live records only (dropping those past
// retention) into a new file that replaces the old one atomically.
type store struct {
	dir  string
	f    *os.File
	size int64
	// base is the size of the log right after the last compaction.
	base  int64
	dirty bool
	// touched, if set, is told the id of every alert written.
	touched func(id string)
}

const (
	storeFile     = "alerts.log"
	frameHeader   = 8
	maxFrameBytes = 64 << 20
	// compactAt: compaction runs once the log has grown past this and
	// past twice its compacted size.
	compactAt = 8 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openStore opens (creating) the store in dir and returns its alerts and
// the number of bytes of a damaged tail it cut off.
func openStore(dir string) (*store, map[string]*Alert, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, 0, fmt.Errorf("alert store: %w", err)
	}
	path := filepath.Join(dir, storeFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("alert store: %w", err)
	}
	alerts, good, err := readLog(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("alert store %s: %w", path, err)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("alert store: %w", err)
	}
	cut := end - good
	if cut > 0 {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("alert store: cut damaged tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("alert store: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("alert store: %w", err)
	}
	return &store{dir: dir, f: f, size: good, base: good}, alerts, cut, nil
}

// readLog reads every whole frame of f and returns the alerts and the
// offset after the last good frame.
func readLog(f *os.File) (map[string]*Alert, int64, error) {
	alerts := map[string]*Alert{}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, err
	}
	var off int64
	for int64(len(data))-off >= frameHeader {
		n := int64(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n > maxFrameBytes || off+frameHeader+n > int64(len(data)) {
			break
		}
		payload := data[off+frameHeader : off+frameHeader+n]
		if crc32.Checksum(payload, crcTable) != sum {
			break
		}
		var a Alert
		if err := json.Unmarshal(payload, &a); err != nil || a.ID == "" {
			break
		}
		alerts[a.ID] = &a
		off += frameHeader + n
	}
	return alerts, off, nil
}

func frame(a *Alert) ([]byte, error) {
	payload, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert %s: %w", a.ID, err)
	}
	b := make([]byte, frameHeader, frameHeader+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	return append(b, payload...), nil
}

// put appends a's current record. It is durable after the next sync.
func (s *store) put(a *Alert) error {
	b, err := frame(a)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("alert store: write %s: %w", a.ID, err)
	}
	s.size += int64(len(b))
	s.dirty = true
	if s.touched != nil {
		s.touched(a.ID)
	}
	return nil
}

// sync makes every put so far durable.
func (s *store) sync() error {
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("alert store: sync: %w", err)
	}
	s.dirty = false
	return nil
}

// needsCompaction reports whether the log has grown enough to rewrite.
func (s *store) needsCompaction() bool { return s.size > compactAt && s.size > 2*s.base }

// compact replaces the log with one record per alert in alerts.
func (s *store) compact(alerts map[string]*Alert) error {
	ids := make([]string, 0, len(alerts))
	for id := range alerts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tmp := filepath.Join(s.dir, storeFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("alert store: compact: %w", err)
	}
	var size int64
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("alert store: compact: %w", err)
	}
	for _, id := range ids {
		b, err := frame(alerts[id])
		if err != nil {
			return fail(err)
		}
		if _, err := f.Write(b); err != nil {
			return fail(err)
		}
		size += int64(len(b))
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, storeFile)); err != nil {
		return fail(err)
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.f.Close()
	s.f, s.size, s.base, s.dirty = f, size, size, false
	return nil
}

// close syncs and closes the log.
func (s *store) close() error {
	err := s.sync()
	return errors.Join(err, s.f.Close())
}
