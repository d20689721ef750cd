package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// ReadPartition delivers partition p's records in stream order, starting
// at stream sequence from (1 or less: from the beginning), to fn, until ctx
// ends (it then returns nil) or fn or the stream fails. fn gets each
// record's stream sequence, the position a state checkpoint covers.
//
// It reads through an ordered consumer: ephemeral, flow-controlled, and
// re-created by the client from the last sequence it delivered when a
// server dies or a gap is seen, so fn sees every record of the partition
// once and in order (a record whose payload does not decode is an error:
// only ingest writes the stream).
func (l *Log) ReadPartition(ctx context.Context, p int, from uint64, fn func(seq uint64, rec *telemetry.Record) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{PartitionFilter(p)}}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	// Creating the consumer needs the meta leader and the stream leader;
	// right after a node loss both may be in election, so retry until ctx
	// ends.
	var cons jetstream.Consumer
	backoff := 50 * time.Millisecond
	for {
		var err error
		cons, err = l.js.OrderedConsumer(ctx, l.o.Stream, cfg)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("cluster: partition %d consumer: %w", p, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	// A pull the server never answered (seen under load: one partition of
	// 64 on one connection idle for 10 s) is noticed by the missing idle
	// heartbeats, and the ordered consumer is recreated from the last
	// sequence delivered; a 1 s heartbeat makes that 2 s instead of 10.
	it, err := cons.Messages(jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return fmt.Errorf("cluster: partition %d messages: %w", p, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	var rec telemetry.Record
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("cluster: partition %d: %w", p, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("cluster: partition %d metadata: %w", p, err)
		}
		rec = telemetry.Record{}
		if err := rec.UnmarshalBinary(msg.Data()); err != nil {
			return fmt.Errorf("cluster: partition %d seq %d: %w", p, md.Sequence.Stream, err)
		}
		if err := fn(md.Sequence.Stream, &rec); err != nil {
			return err
		}
	}
}
