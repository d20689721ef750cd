package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/storage/spool"
)

// DurableOptions configures a durable consumer. Stream and Name are
// required.
type DurableOptions struct {
	Stream string
	// Name is the durable consumer's name; every process that opens the
	// same name shares its position (the stream's messages are divided
	// among them).
	Name string
	// Filter limits the consumer to matching subjects; "" takes all.
	Filter string
	// MaxAckPending bounds the messages delivered and not yet acked;
	// default 20000.
	MaxAckPending int
	// AckWait is how long a delivered message may stay unacked before it
	// is delivered again; default 30 s. It is how long the records a dead
	// node had fetched wait before a survivor gets them; a reader stuck on
	// a slow sink longer than that sees them again, so its writes must be
	// idempotent (InfluxDB points and alert event keys are).
	AckWait time.Duration
}

// Durable is a durable pull consumer read in batches and acknowledged
// after the reader's own persistence: what is not acked is delivered again
// after a crash. Batch and Ack make it an influx.Source (the InfluxDB
// writer drains it as it drains the spool). It is meant to be read by one
// goroutine.
type Durable struct {
	cons jetstream.Consumer
	name string

	mu      sync.Mutex
	batches [][]jetstream.Msg // delivered, not yet acked, in order
}

// OpenDurable creates (or opens) the durable consumer.
func OpenDurable(ctx context.Context, js jetstream.JetStream, o DurableOptions) (*Durable, error) {
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 20000
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       o.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: o.Filter,
	}
	cons, err := openRetry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, o.Stream, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: durable consumer %s on %s: %w", o.Name, o.Stream, err)
	}
	return &Durable{cons: cons, name: o.Name}, nil
}

// Fetch returns the next messages, at most max, blocking until there is at
// least one or ctx ends (ctx's error). Under load a batch is whatever is
// waiting; when idle the first message returns at once.
func (d *Durable) Fetch(ctx context.Context, max int) ([]jetstream.Msg, error) {
	for {
		batch, err := d.cons.FetchNoWait(max)
		if err == nil {
			msgs := collect(batch)
			if len(msgs) > 0 {
				return msgs, nil
			}
		} else if !transientFetch(err) {
			return nil, fmt.Errorf("cluster: fetch %s: %w", d.name, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Nothing waiting: wait for one message (at most a second, so
		// that ctx is looked at again), then take whatever has arrived
		// with it on the next round.
		batch, err = d.cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err == nil {
			if msgs := collect(batch); len(msgs) > 0 {
				return msgs, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && !transientFetch(err) {
			return nil, fmt.Errorf("cluster: fetch %s: %w", d.name, err)
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func collect(b jetstream.MessageBatch) []jetstream.Msg {
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

// transientFetch reports a fetch failure that a retry can outlive: every
// one but a connection closed for good (a node lost, a leader election, a
// reconnect in progress).
func transientFetch(err error) bool {
	return !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, jetstream.ErrInvalidOption)
}

// AckAll acknowledges msgs and returns how many acks could not be sent. A
// lost ack costs a redelivery, which the reader's idempotent writes
// absorb, so it is not an error.
func AckAll(msgs []jetstream.Msg) (lost int) {
	for _, m := range msgs {
		if m.Ack() != nil {
			lost++
		}
	}
	return lost
}

// Next returns the next batch as records (message payloads), at most
// maxRecords of them; maxBytes is not enforced beyond the server's own
// limits. With Ack it makes the Durable an influx.Source.
func (d *Durable) Next(ctx context.Context, maxRecords, _ int) (spool.Batch, error) {
	msgs, err := d.Fetch(ctx, maxRecords)
	if err != nil {
		return spool.Batch{}, err
	}
	b := spool.Batch{Records: make([][]byte, len(msgs))}
	for i, m := range msgs {
		b.Records[i] = m.Data()
	}
	d.mu.Lock()
	d.batches = append(d.batches, msgs)
	d.mu.Unlock()
	return b, nil
}

// Ack acknowledges the oldest batch Next returned and not yet acked
// (batches are acked in the order Next returned them).
func (d *Durable) Ack(b spool.Batch) error {
	d.mu.Lock()
	if len(d.batches) == 0 {
		d.mu.Unlock()
		return errors.New("cluster: ack without a batch")
	}
	msgs := d.batches[0]
	d.batches = d.batches[1:]
	d.mu.Unlock()
	if len(msgs) != len(b.Records) {
		return fmt.Errorf("cluster: ack of %d records for a batch of %d", len(b.Records), len(msgs))
	}
	AckAll(msgs)
	return nil
}
