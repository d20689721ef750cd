package ingest

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// windowBits is how many sequence numbers below the highest seen are
// remembered per device and kind: 1,024 covers a 17-minute back-fill at one
// message per second.
const windowBits = 1024

// Verdict is what the deduplicator says of a message.
type Verdict uint8

// Verdicts.
const (
	SeqNew       Verdict = iota // not seen before, in order
	SeqLate                     // not seen before, older than one already accepted
	SeqDuplicate                // seen before: a redelivery
)

// stream is the dedup state of one device's messages of one kind.
type stream struct {
	high   uint64 // highest seq accepted
	lastTS time.Time
	seen   [windowBits / 64]uint64 // bit i: seq high-i was accepted
	init   bool
}

func (s *stream) has(seq uint64) bool {
	if seq > s.high || s.high-seq >= windowBits {
		return false
	}
	d := s.high - seq
	return s.seen[d/64]&(1<<(d%64)) != 0
}

func (s *stream) mark(seq uint64, ts time.Time) {
	switch {
	case !s.init:
		*s = stream{high: seq, init: true}
	case seq > s.high:
		s.shift(seq - s.high)
		s.high = seq
	case s.high-seq >= windowBits:
		return // older than the window: nothing to remember it in
	}
	d := s.high - seq
	s.seen[d/64] |= 1 << (d % 64)
	if ts.After(s.lastTS) {
		s.lastTS = ts
	}
}

// shift moves the window up by n sequence numbers.
func (s *stream) shift(n uint64) {
	if n >= windowBits {
		s.seen = [windowBits / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(s.seen) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = s.seen[j] << bits
			if bits > 0 && j > 0 {
				v |= s.seen[j-1] >> (64 - bits)
			}
		}
		s.seen[i] = v
	}
}

// Dedup remembers, per device and kind, which sequence numbers were accepted
// recently, so redeliveries (same device, kind and seq) are dropped. It is
// safe for concurrent use; locking is sharded by device.
//
// A redelivery carries its original ts, so a seq already seen is a duplicate
// only if its ts is not newer than everything accepted; a seen or far-below
// seq with a newer ts is a device that restarted its counter, and starts a
// new window. One far below
// the window with an older ts cannot be told apart from a very late
// back-fill, so it is kept (as Late) rather than risk losing data; InfluxDB
// writes are idempotent for a true redelivery.
type Dedup struct {
	seed   maphash.Seed
	shards [64]dedupShard
}

type dedupShard struct {
	mu sync.Mutex
	m  map[telemetry.Key]*stream // Key.Seq is always 0 here
}

// NewDedup returns an empty deduplicator.
func NewDedup() *Dedup {
	d := &Dedup{seed: maphash.MakeSeed()}
	for i := range d.shards {
		d.shards[i].m = make(map[telemetry.Key]*stream)
	}
	return d
}

func (d *Dedup) shard(device string) *dedupShard {
	return &d.shards[maphash.String(d.seed, device)%uint64(len(d.shards))]
}

// Check classifies a message without remembering it; call Mark once it is
// durable, so that a message that failed to store is not later mistaken for
// a duplicate of itself.
func (d *Dedup) Check(device string, kind telemetry.Kind, seq uint64, ts time.Time) Verdict {
	sh := d.shard(device)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[telemetry.Key{Device: device, Kind: kind}]
	switch {
	case s == nil || !s.init || seq > s.high:
		if s != nil && ts.Before(s.lastTS) {
			return SeqLate
		}
		return SeqNew
	case s.high-seq < windowBits:
		switch {
		case s.has(seq) && !ts.After(s.lastTS):
			return SeqDuplicate
		case s.has(seq):
			return SeqNew // seen seq with a newer ts: the counter restarted
		}
		return SeqLate
	case ts.After(s.lastTS):
		return SeqNew // counter restarted
	}
	return SeqLate
}

// Mark records an accepted message.
func (d *Dedup) Mark(device string, kind telemetry.Kind, seq uint64, ts time.Time) {
	sh := d.shard(device)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := telemetry.Key{Device: device, Kind: kind}
	s := sh.m[k]
	if s == nil {
		s = &stream{}
		sh.m[k] = s
	}
	if s.init && seq < s.high && ts.After(s.lastTS) && (s.high-seq >= windowBits || s.has(seq)) {
		*s = stream{} // counter restarted: start a new window at seq
	}
	s.mark(seq, ts)
}

// Len returns the number of device streams tracked.
func (d *Dedup) Len() int {
	n := 0
	for i := range d.shards {
		d.shards[i].mu.Lock()
		n += len(d.shards[i].m)
		d.shards[i].mu.Unlock()
	}
	return n
}
