// Package ingest turns raw MQTT messages into accepted telemetry records: it
// parses the topic, checks the sender's identity, decodes and range-checks the
// JSON payload, drops redeliveries, marks late messages, hands every accepted
// record to a durable store, and keeps every rejected one, with its reason, in
// a dead-letter file.
//
// It knows nothing of brokers or storage: a broker hook (ingest/broker) or an
// external-broker client (ingest.Client) calls Ingester.Begin for each message
// and acknowledges it to the device only when the returned Pending reports
// the record durable.
package ingest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/internal/ratelog"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Devices tells which devices are registered. Implemented by the registry.
type Devices interface {
	// Class returns the registered device's class; ok is false for an
	// unknown device.
	Class(id string) (class telemetry.Class, ok bool)
}

// Store makes encoded records durable. Submit must copy payload and must not
// block on disk; the returned Waiter reports when the record is durable.
// Records submitted by one goroutine become durable in submission order.
type Store interface {
	Submit(payload []byte) Waiter
}

// Waiter reports the outcome of one Store.Submit.
type Waiter interface {
	// Wait blocks until the record is durable (nil) or failed.
	Wait() error
	// Done is closed when Wait would not block.
	Done() <-chan struct{}
}

// Observer is told of each accepted record once it is durable. It must not
// block and must not keep rec past the call.
type Observer func(rec *telemetry.Record)

// Status is the outcome class of one message.
type Status uint8

// Statuses.
const (
	// Accepted: the record is durable; acknowledge it.
	Accepted Status = iota
	// Duplicate: a redelivery of a durable record; acknowledge it.
	Duplicate
	// Rejected: the message breaks the contract and is in the dead letters;
	// acknowledge it (or refuse it, where the protocol can say why) so the
	// device does not send it again.
	Rejected
	// Unavailable: the store refused it (full, closed, failing); do NOT
	// acknowledge, so the device sends it again later.
	Unavailable
)

// String returns the status name.
func (s Status) String() string {
	return [...]string{"accepted", "duplicate", "rejected", "unavailable"}[s]
}

// Outcome is what became of one message.
type Outcome struct {
	Status Status
	Reason Reason // for Rejected
	Late   bool   // for Accepted
	Err    error  // the rejection or the store's error
}

// Options configures an Ingester. Devices and Store are required.
type Options struct {
	Devices     Devices
	Store       Store
	DeadLetters *DeadLetters // nil: rejected messages are counted and logged only
	Observer    Observer     // optional
	Now         func() time.Time
	MaxPayload  int           // bytes; default 4 KiB
	MaxFuture   time.Duration // ts may lead the receive time by this much; default 5 min
	MaxAge      time.Duration // ts may trail the receive time by this much; default 7 days
	LateAfter   time.Duration // a message this far behind its ts is marked late; default 1 min
	Logger      zerolog.Logger
	Registerer  prometheus.Registerer
}

// Ingester validates, deduplicates and stores device messages. It is safe for
// concurrent use by any number of connections.
type Ingester struct {
	o       Options
	dedup   *Dedup
	bufs    sync.Pool
	rejLog  ratelog.Limiter
	storLog ratelog.Limiter

	acceptedN atomic.Int64
	// Per-kind children of the vectors above, indexed by Kind, so the hot
	// path does not hash label values for every message.
	kindReceived, kindAccepted, kindDuplicates, kindLate [telemetry.KindDepth + 1]prometheus.Counter

	received    *prometheus.CounterVec
	accepted    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	late        *prometheus.CounterVec
	unavailable prometheus.Counter
	durable     prometheus.Histogram
}

// New returns an Ingester, registering its metrics on o.Registerer.
func New(o Options) (*Ingester, error) {
	if o.Devices == nil || o.Store == nil {
		return nil, errors.New("ingest: Devices and Store are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 4 << 10
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = 5 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.LateAfter <= 0 {
		o.LateAfter = time.Minute
	}
	in := &Ingester{
		o:       o,
		dedup:   NewDedup(),
		rejLog:  ratelog.Limiter{Every: time.Second},
		storLog: ratelog.Limiter{Every: time.Second},
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_ingest_received_total",
			Help: "Device messages received, by kind (unknown for bad topics)."}, []string{"kind"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_ingest_accepted_total",
			Help: "Device messages accepted and durable in the spool, by kind."}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_ingest_rejected_total",
			Help: "Device messages rejected, by reason (see docs/protocol.md)."}, []string{"reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_ingest_duplicates_total",
			Help: "Redelivered messages (same device, kind and seq) dropped, by kind."}, []string{"kind"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_ingest_late_total",
			Help: "Accepted messages marked late (out of order or long after their ts), by kind."}, []string{"kind"}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_ingest_unavailable_total",
			Help: "Messages not acknowledged because the spool refused them (full or failing)."}),
		durable: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "urbanwatch_ingest_durable_seconds",
			Help:    "Time from receiving a message to its record being durable in the spool.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	in.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	for k := telemetry.KindUnknown; k <= telemetry.KindDepth; k++ {
		in.kindReceived[k] = in.received.WithLabelValues(k.String())
		in.kindAccepted[k] = in.accepted.WithLabelValues(k.String())
		in.kindDuplicates[k] = in.duplicates.WithLabelValues(k.String())
		in.kindLate[k] = in.late.WithLabelValues(k.String())
	}
	for _, r := range Reasons {
		in.rejected.WithLabelValues(string(r))
	}
	if o.Registerer != nil {
		if err := registerAll(o.Registerer, in.received, in.accepted, in.rejected, in.duplicates, in.late,
			in.unavailable, in.durable); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Seed tells the deduplicator of a record already durable (read back from the
// spool at startup), so that redeliveries of messages acknowledged — or
// stored but not yet acknowledged — before a restart are still recognised.
func (in *Ingester) Seed(encoded []byte) error {
	var rec telemetry.Record
	if err := rec.UnmarshalBinary(encoded); err != nil {
		return fmt.Errorf("seed dedup: %w", err)
	}
	in.dedup.Mark(rec.Device, rec.Kind, rec.Seq, rec.TS)
	return nil
}

// Pending is a message being stored. Wait returns its Outcome.
type Pending struct {
	in      *Ingester
	outcome Outcome
	waiter  Waiter
	rec     telemetry.Record
	start   time.Time
}

// closedChan is Done's answer for outcomes decided without the store.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Immediate returns the outcome when it was decided without the store
// (rejected or duplicate); ok is false when the outcome waits on a commit.
func (p *Pending) Immediate() (out Outcome, ok bool) {
	if p.waiter == nil {
		return p.outcome, true
	}
	return Outcome{}, false
}

// Done is closed when Wait would not block.
func (p *Pending) Done() <-chan struct{} {
	if p.waiter == nil {
		return closedChan
	}
	return p.waiter.Done()
}

// Wait blocks until the message's fate is known. It must be called exactly
// once; the caller acknowledges the message to the device only when the
// Outcome's Status is not Unavailable.
func (p *Pending) Wait() Outcome {
	if p.waiter == nil {
		return p.outcome
	}
	in, rec := p.in, &p.rec
	if err := p.waiter.Wait(); err != nil {
		in.unavailable.Inc()
		if ok, n := in.storLog.Allow(in.o.Now()); ok {
			in.o.Logger.Error().Err(err).Int("suppressed", n).Str("device", rec.Device).
				Msg("store refused a message; not acknowledged, the device will resend")
		}
		return Outcome{Status: Unavailable, Err: err}
	}
	in.dedup.Mark(rec.Device, rec.Kind, rec.Seq, rec.TS)
	in.kindAccepted[rec.Kind].Inc()
	in.acceptedN.Add(1)
	if rec.Late {
		in.kindLate[rec.Kind].Inc()
	}
	in.durable.Observe(in.o.Now().Sub(p.start).Seconds())
	if in.o.Observer != nil {
		in.o.Observer(rec)
	}
	return Outcome{Status: Accepted, Late: rec.Late}
}

// Handle is Begin followed by Wait.
func (in *Ingester) Handle(identity, topic string, payload []byte) Outcome {
	return in.Begin(identity, topic, payload).Wait()
}

// Begin checks one message and, if it is good, submits it to the store
// without waiting. identity is the device the connection authenticated as;
// "" means the topic's {device} is trusted (external broker mode, where the
// broker enforces per-device topic ACLs). payload is not retained.
func (in *Ingester) Begin(identity, topic string, payload []byte) *Pending {
	now := in.o.Now()
	p := &Pending{in: in, start: now}
	device, kind, rej := ParseTopic(topic)
	in.kindReceived[kind].Inc()
	if rej != nil {
		return in.rejectWith(p, identity, topic, payload, rej)
	}
	if len(payload) > in.o.MaxPayload {
		return in.rejectWith(p, identity, topic, payload,
			reject(ReasonOversized, "payload %d bytes, limit %d", len(payload), in.o.MaxPayload))
	}
	if identity != "" && identity != device {
		return in.rejectWith(p, identity, topic, payload,
			reject(ReasonIdentityMismatch, "connection is %q, topic names %q", identity, device))
	}
	if class, ok := in.o.Devices.Class(device); !ok || class != kind.Class() {
		return in.rejectWith(p, identity, topic, payload,
			reject(ReasonUnknownDevice, "device %q is not registered as %s", device, kind.Class()))
	}
	rec, err := Decode(kind, payload)
	if err != nil {
		return in.rejectWith(p, identity, topic, payload, err.(*Rejection))
	}
	if rec.TS.After(now.Add(in.o.MaxFuture)) {
		return in.rejectWith(p, identity, topic, payload, reject(ReasonTSFuture,
			"ts %s is %s ahead of the receive time, limit %s", rec.TS.Format(time.RFC3339), rec.TS.Sub(now).Round(time.Second), in.o.MaxFuture))
	}
	if rec.TS.Before(now.Add(-in.o.MaxAge)) {
		return in.rejectWith(p, identity, topic, payload, reject(ReasonTSTooOld,
			"ts %s is %s old, limit %s", rec.TS.Format(time.RFC3339), now.Sub(rec.TS).Round(time.Second), in.o.MaxAge))
	}
	rec.Device, rec.Received = device, now
	switch in.dedup.Check(device, kind, rec.Seq, rec.TS) {
	case SeqDuplicate:
		in.kindDuplicates[kind].Inc()
		p.outcome = Outcome{Status: Duplicate}
		return p
	case SeqLate:
		rec.Late = true
	}
	if now.Sub(rec.TS) > in.o.LateAfter {
		rec.Late = true
	}
	bp := in.bufs.Get().(*[]byte)
	buf := rec.AppendBinary((*bp)[:0])
	p.waiter = in.o.Store.Submit(buf)
	*bp = buf
	in.bufs.Put(bp)
	p.rec = rec
	return p
}

// Reject records a message refused before it reached Begin (for example by
// the broker's ACL): it is counted, logged at a bounded rate and kept in the
// dead letters.
func (in *Ingester) Reject(identity, topic string, payload []byte, reason Reason, detail string) {
	in.kindReceived[telemetry.KindUnknown].Inc()
	in.rejectWith(&Pending{}, identity, topic, payload, &Rejection{Reason: reason, Detail: detail})
}

func (in *Ingester) rejectWith(p *Pending, identity, topic string, payload []byte, rej *Rejection) *Pending {
	in.rejected.WithLabelValues(string(rej.Reason)).Inc()
	if ok, n := in.rejLog.Allow(in.o.Now()); ok {
		in.o.Logger.Warn().Str("reason", string(rej.Reason)).Str("detail", rej.Detail).Str("topic", topic).
			Str("identity", identity).Int("suppressed", n).Msg("message rejected")
	}
	if in.o.DeadLetters != nil {
		in.o.DeadLetters.Put(in.o.Now(), rej.Reason, rej.Detail, topic, identity, payload)
	}
	p.outcome = Outcome{Status: Rejected, Reason: rej.Reason, Err: rej}
	return p
}

// Accepted returns how many records have been accepted into the store since
// New, over all kinds.
func (in *Ingester) Accepted() int64 { return in.acceptedN.Load() }
