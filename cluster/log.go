// Package cluster is urbanwatch's cluster mode on NATS JetStream (see
// docs/cluster.md): the replicated record log that ingest nodes publish every
// accepted record to, partitioned by device; the partition leases that give
// each partition exactly one rules worker at a time; the per-partition state
// checkpoints that move with a partition; and the ordered partition reader a
// worker replays from a checkpoint's sequence.
//
// It holds no state of its own that matters after a crash: everything
// durable is in JetStream (the stream, the lease and state buckets), R3.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Defaults of LogOptions.
const (
	DefaultStream      = "UW_REC"
	DefaultPartitions  = 64
	DefaultReplicas    = 3
	DefaultDedupWindow = 10 * time.Minute
	// SubjectPrefix starts every record subject: uw.rec.<partition>.<device>.
	SubjectPrefix = "uw.rec"
)

// LogOptions configures the record stream. The zero value means the
// defaults above. Partitions is part of the data's layout: every process of
// a cluster must agree on it, and changing it moves devices between
// partitions (see docs/cluster.md, "Changing P").
type LogOptions struct {
	Stream      string
	Partitions  int
	Replicas    int
	DedupWindow time.Duration // JetStream's Nats-Msg-Id window
	MaxAge      time.Duration // 0: keep forever (limits retention)
	// Key maps a device to the key its partition is computed from; nil
	// uses the device id. A truck may carry several devices (a GPS
	// terminal and a sensor box): CityKeys keys them all by the truck, so
	// one engine sees the whole truck. Every process of a cluster must use
	// the same Key.
	Key func(device string) string
}

func (o *LogOptions) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
}

// Partition maps a device to its partition: FNV-1a (32 bit) of the device
// id, modulo n. Every record of a device is in one partition, so one worker
// sees a truck's or a gauge's whole history in order.
func Partition(device string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(device))
	return int(h.Sum32() % uint32(n))
}

// Subject is the subject of a record of device in partition p:
// uw.rec.<p>.<device>, with any '.' in the device id written as '~' (device
// ids are [A-Za-z0-9._-], so the mapping is one-to-one and the id stays one
// subject token).
func Subject(p int, device string) (string, error) {
	if device == "" || strings.ContainsAny(device, "*> \t\r\n~") {
		return "", fmt.Errorf("cluster: device id %q cannot be a subject token", device)
	}
	return SubjectPrefix + "." + strconv.Itoa(p) + "." + strings.ReplaceAll(device, ".", "~"), nil
}

// PartitionFilter is the subject filter of partition p's records.
func PartitionFilter(p int) string { return SubjectPrefix + "." + strconv.Itoa(p) + ".*" }

// MsgID is the record's JetStream de-duplication id (Nats-Msg-Id):
// device/kind/seq, the same key ingest deduplicates on. A record published
// again (an ingest node that lost the ack, a device that resent to another
// node) within the dedup window is stored once.
func MsgID(rec *telemetry.Record) string {
	return rec.Device + "/" + rec.Kind.String() + "/" + strconv.FormatUint(rec.Seq, 10)
}

// Log is the replicated record stream. It is safe for concurrent use.
type Log struct {
	js jetstream.JetStream
	o  LogOptions
}

// OpenLog creates the record stream, or updates it to o, and returns it.
// The stream takes subjects uw.rec.*.*, file storage, o.Replicas replicas
// (3: a write is acknowledged once a majority has it), and de-duplicates by
// Nats-Msg-Id over o.DedupWindow.
func OpenLog(ctx context.Context, js jetstream.JetStream, o LogOptions) (*Log, error) {
	o.defaults()
	err := openStream(ctx, js, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "urbanwatch accepted device records, partitioned by truck or device",
		Subjects:    []string{SubjectPrefix + ".*.*"},
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  o.DedupWindow,
	})
	if err != nil {
		return nil, err
	}
	return &Log{js: js, o: o}, nil
}

// openStream creates stream cfg, or updates it, as an R-replicated file
// stream with limits retention that discards the oldest messages, and
// returns once it has a leader.
func openStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	cfg.Storage, cfg.Retention, cfg.Discard = jetstream.FileStorage, jetstream.LimitsPolicy, jetstream.DiscardOld
	st, err := openRetry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return fmt.Errorf("cluster: open stream %s: %w", cfg.Name, err)
	}
	return awaitLeader(ctx, st, cfg.Name)
}

// Partitions is the partition count.
func (l *Log) Partitions() int { return l.o.Partitions }

// PartitionOf is the partition device's records are in: Partition of its
// Key.
func (l *Log) PartitionOf(device string) int {
	if l.o.Key != nil {
		device = l.o.Key(device)
	}
	return Partition(device, l.o.Partitions)
}

// Stream is the stream's name.
func (l *Log) Stream() string { return l.o.Stream }

// PubAck is the outcome of a publish: the record's stream sequence, and
// whether JetStream recognised it as a duplicate of one stored earlier (in
// which case Seq is that earlier copy's sequence).
type PubAck struct {
	Seq       uint64
	Duplicate bool
}

// Publish appends rec to its partition and returns only once JetStream has
// acknowledged the write (stored by a majority of the replicas). Transient
// failures — no stream leader during an election, an ack lost to a node
// that died — are retried with the same Nats-Msg-Id until ctx ends, so a
// record is stored once however often it is sent. The caller acknowledges
// the device only after a nil error.
func (l *Log) Publish(ctx context.Context, rec *telemetry.Record) (PubAck, error) {
	msg, err := l.message(rec, nil)
	if err != nil {
		return PubAck{}, err
	}
	return l.publishMsg(ctx, msg)
}

// PublishEncoded is Publish of a record in telemetry's binary encoding
// (what ingest hands its Store); the stored payload is that encoding.
func (l *Log) PublishEncoded(ctx context.Context, encoded []byte) (PubAck, error) {
	var rec telemetry.Record
	if err := rec.UnmarshalBinary(encoded); err != nil {
		return PubAck{}, fmt.Errorf("cluster: decode record: %w", err)
	}
	msg, err := l.message(&rec, encoded)
	if err != nil {
		return PubAck{}, err
	}
	return l.publishMsg(ctx, msg)
}

func (l *Log) message(rec *telemetry.Record, encoded []byte) (*nats.Msg, error) {
	subj, err := Subject(l.PartitionOf(rec.Device), rec.Device)
	if err != nil {
		return nil, err
	}
	if encoded == nil {
		encoded = rec.AppendBinary(nil)
	}
	msg := nats.NewMsg(subj)
	msg.Data = encoded
	msg.Header.Set(jetstream.MsgIDHeader, MsgID(rec))
	return msg, nil
}

// publishTry bounds one publish attempt, so an ack lost with a dead node
// is retried rather than waited for until ctx ends.
const publishTry = 2 * time.Second

func (l *Log) publishMsg(ctx context.Context, msg *nats.Msg) (PubAck, error) {
	return publishRetry(ctx, l.js, l.o.Stream, msg)
}

// publishRetry publishes msg to stream until it is stored, refused, or ctx
// ends; a resend carries the same Nats-Msg-Id, so it is stored once.
func publishRetry(ctx context.Context, js jetstream.JetStream, stream string, msg *nats.Msg) (PubAck, error) {
	backoff := 20 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, publishTry)
		ack, err := js.PublishMsg(tctx, msg, jetstream.WithExpectStream(stream))
		cancel()
		if err == nil {
			return PubAck{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
		}
		if !retryable(err) {
			return PubAck{}, fmt.Errorf("cluster: publish %s: %w", msg.Subject, err)
		}
		select {
		case <-ctx.Done():
			return PubAck{}, fmt.Errorf("cluster: publish %s: %w (last error: %v)", msg.Subject, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// retryable tells a transient publish failure (the write may or may not be
// stored; sending it again with the same id is safe) from a permanent one.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// A wrong stream, a bad subject or an oversized message will not
		// pass on a second try; anything else the server says (no leader
		// yet, not current, insufficient resources) may.
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamNotFound, jetstream.JSErrCodeStreamMessageExceedsMaximum,
			jetstream.JSErrCodeBadRequest:
			return false
		}
		return true
	}
	return !errors.Is(err, nats.ErrBadSubject) && !errors.Is(err, nats.ErrMaxPayload)
}

// LastSeq is the stream's last sequence (0 when empty).
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	s, err := l.js.Stream(ctx, l.o.Stream)
	if err != nil {
		return 0, fmt.Errorf("cluster: stream %s: %w", l.o.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: stream %s info: %w", l.o.Stream, err)
	}
	return info.State.LastSeq, nil
}
