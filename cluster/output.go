package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of OutputOptions.
const (
	DefaultOutputStream = "UW_ALERTS"
	// OutputPrefix starts every output subject: uw.out.<partition>.
	OutputPrefix = "uw.out"
)

// OutputOptions configures the output stream; the zero value means the
// defaults (DefaultOutputStream, DefaultReplicas, DefaultDedupWindow, kept
// forever).
type OutputOptions struct {
	Stream      string
	Replicas    int
	DedupWindow time.Duration
	MaxAge      time.Duration
}

// Output is the stream of what the rules workers derive: every alert event
// (JSON, docs/protocol.md) and every finished trip ({"trip": ...}), on
// subject uw.out.<partition>, with Nats-Msg-Id = the event's key (alert
// id#version, or "trip:" and the trip id). An event derived twice — by a
// worker that died after publishing and its successor replaying the same
// records, or by a paused worker that has not noticed it lost its lease —
// is stored once within the dedup window. Alerting, the trips writer and
// the MQTT alert publisher read it with durable consumers.
type Output struct {
	js jetstream.JetStream
	o  OutputOptions
}

// OpenOutput creates the output stream, or updates it to o.
func OpenOutput(ctx context.Context, js jetstream.JetStream, o OutputOptions) (*Output, error) {
	if o.Stream == "" {
		o.Stream = DefaultOutputStream
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	err := openStream(ctx, js, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "urbanwatch alert events and finished trips, by partition",
		Subjects:    []string{OutputPrefix + ".*"},
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  o.DedupWindow,
	})
	if err != nil {
		return nil, err
	}
	return &Output{js: js, o: o}, nil
}

// Stream is the output stream's name.
func (o *Output) Stream() string { return o.o.Stream }

// OutputSubject is partition p's output subject.
func OutputSubject(p int) string { return OutputPrefix + "." + strconv.Itoa(p) }

func (o *Output) message(p int, id string, payload []byte) *nats.Msg {
	msg := nats.NewMsg(OutputSubject(p))
	msg.Data = payload
	msg.Header.Set(jetstream.MsgIDHeader, id)
	return msg
}

// PublishAsync publishes one event of partition p with de-duplication id
// id, without waiting; the future reports the stream's ack.
func (o *Output) PublishAsync(p int, id string, payload []byte) (jetstream.PubAckFuture, error) {
	return o.js.PublishMsgAsync(o.message(p, id, payload), jetstream.WithExpectStream(o.o.Stream))
}

// Publish publishes one event and waits until it is stored, retrying with
// the same id until ctx ends.
func (o *Output) Publish(ctx context.Context, p int, id string, payload []byte) (PubAck, error) {
	return publishRetry(ctx, o.js, o.o.Stream, o.message(p, id, payload))
}

// Published returns the de-duplication ids of partition p's events stored
// at stream sequence from or later, each with its stream sequence, and the
// last sequence of the stream it looked at. A new owner of p suppresses these when its replay derives
// them again: they were announced by the previous owner after the
// checkpoint it restored.
func (o *Output) Published(ctx context.Context, p int, from uint64) (map[string]uint64, uint64, error) {
	ids := map[string]uint64{}
	st, err := o.js.Stream(ctx, o.o.Stream)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: stream %s: %w", o.o.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: stream %s info: %w", o.o.Stream, err)
	}
	last := info.State.LastSeq
	if from < 1 {
		from = 1
	}
	if from > last {
		return ids, last, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{OutputSubject(p)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: read %s of partition %d: %w", o.o.Stream, p, err)
	}
	// The consumer counts, when created, the messages of p from `from` on;
	// read that many (the stream may grow meanwhile; later ones are not
	// this owner's predecessor's).
	want := cons.CachedInfo().NumPending
	for read := uint64(0); read < want; {
		batch, err := cons.Fetch(int(min(want-read, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: read %s of partition %d: %w", o.o.Stream, p, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("cluster: %s metadata: %w", o.o.Stream, err)
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" {
				ids[id] = md.Sequence.Stream
			}
			last = max(last, md.Sequence.Stream)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, fmt.Errorf("cluster: read %s of partition %d: %w", o.o.Stream, p, err)
		}
		if n == 0 {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			continue
		}
		read += uint64(n)
	}
	return ids, last, nil
}

// awaitLeader returns once stream st has a leader: a stream just created
// has none for a moment, and publishes then find no responder.
func awaitLeader(ctx context.Context, st jetstream.Stream, name string) error {
	for {
		info, err := st.Info(ctx)
		if err == nil && (info.Cluster == nil || info.Cluster.Leader != "") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: stream %s has no leader: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
