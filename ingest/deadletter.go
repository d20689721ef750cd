package ingest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DeadLetter is one rejected message kept for inspection, one JSON object per
// line of the dead-letter file.
type DeadLetter struct {
	At       time.Time `json:"at"`
	Reason   Reason    `json:"reason"`
	Detail   string    `json:"detail"`
	Topic    string    `json:"topic,omitempty"`
	Identity string    `json:"identity,omitempty"`
	// Payload is the message as received when it is valid UTF-8, else
	// PayloadB64 holds it base64-encoded. Payloads are cut at MaxPayload
	// bytes, and Truncated says so.
	Payload    string `json:"payload,omitempty"`
	PayloadB64 string `json:"payload_b64,omitempty"`
	Size       int    `json:"size"`
	Truncated  bool   `json:"truncated,omitempty"`
}

// DeadLetterOptions configures a DeadLetters file.
type DeadLetterOptions struct {
	Dir        string // the file is Dir/deadletters.jsonl, rotated to .1, .2, ...
	MaxBytes   int64  // rotate past this size; default 16 MiB
	MaxFiles   int    // rotated files kept; default 4
	MaxPayload int    // payload bytes kept per entry; default 8 KiB
	Queue      int    // entries buffered for the writer; default 4,096
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// DeadLetters writes rejected messages to a bounded, rotated JSON-lines file
// from a goroutine of its own, so a flood of bad messages costs the senders
// only a channel send. When the queue is full, entries are dropped and
// counted rather than slowing ingest: they are evidence, not data.
type DeadLetters struct {
	o       DeadLetterOptions
	ch      chan DeadLetter
	done    chan struct{}
	mu      sync.RWMutex // guards closed against Put racing Close
	closed  bool
	f       *os.File
	size    int64
	written prometheus.Counter
	dropped prometheus.Counter
}

// OpenDeadLetters creates Dir and starts the writer. Close stops it.
func OpenDeadLetters(o DeadLetterOptions) (*DeadLetters, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 4
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 8 << 10
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	d := &DeadLetters{o: o, ch: make(chan DeadLetter, o.Queue), done: make(chan struct{}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_ingest_deadletters_written_total",
			Help: "Rejected messages written to the dead-letter file."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_ingest_deadletters_dropped_total",
			Help: "Rejected messages not written because the dead-letter queue was full."}),
	}
	if o.Registerer != nil {
		if err := registerAll(o.Registerer, d.written, d.dropped); err != nil {
			return nil, err
		}
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	go d.run()
	return d, nil
}

// Path returns the current dead-letter file.
func (d *DeadLetters) Path() string { return filepath.Join(d.o.Dir, "deadletters.jsonl") }

// Put queues an entry; the payload is copied. It never blocks.
func (d *DeadLetters) Put(at time.Time, reason Reason, detail, topic, identity string, payload []byte) {
	e := DeadLetter{At: at.UTC(), Reason: reason, Detail: detail, Topic: topic, Identity: identity, Size: len(payload)}
	p := payload
	if len(p) > d.o.MaxPayload {
		p, e.Truncated = p[:d.o.MaxPayload], true
	}
	if utf8.Valid(p) {
		e.Payload = string(p)
	} else {
		e.PayloadB64 = base64.StdEncoding.EncodeToString(p)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.dropped.Inc()
		return
	}
	select {
	case d.ch <- e:
	default:
		d.dropped.Inc()
	}
}

// Close writes what is queued and closes the file. Entries Put after Close
// are counted as dropped.
func (d *DeadLetters) Close() error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.ch)
	}
	d.mu.Unlock()
	<-d.done
	return nil
}

func (d *DeadLetters) run() {
	defer close(d.done)
	defer func() {
		if d.f != nil {
			d.f.Close()
		}
	}()
	var buf []byte
	for e := range d.ch {
		buf = buf[:0]
		b, err := json.Marshal(e)
		if err != nil {
			continue
		}
		buf = append(append(buf, b...), '\n')
		if d.size+int64(len(buf)) > d.o.MaxBytes && d.size > 0 {
			if err := d.rotate(); err != nil {
				d.o.Logger.Error().Err(err).Msg("rotate dead letters")
			}
		}
		if d.f == nil {
			d.dropped.Inc()
			continue
		}
		n, err := d.f.Write(buf)
		d.size += int64(n)
		if err != nil {
			d.o.Logger.Error().Err(err).Msg("write dead letter")
			d.dropped.Inc()
			continue
		}
		d.written.Inc()
	}
}

func (d *DeadLetters) open() error {
	f, err := os.OpenFile(d.Path(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open dead letters: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat dead letters: %w", err)
	}
	d.f, d.size = f, st.Size()
	return nil
}

func (d *DeadLetters) rotate() error {
	d.f.Close()
	d.f = nil
	base := d.Path()
	os.Remove(fmt.Sprintf("%s.%d", base, d.o.MaxFiles))
	for i := d.o.MaxFiles - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", base, i), fmt.Sprintf("%s.%d", base, i+1))
	}
	if err := os.Rename(base, base+".1"); err != nil {
		return fmt.Errorf("rotate dead letters: %w", err)
	}
	return d.open()
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
