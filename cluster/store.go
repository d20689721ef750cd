package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Store adapts the Log to ingest.Store, so that an ingest node in cluster
// mode hands accepted records to JetStream instead of (or besides) the
// local spool, and acknowledges the device only once JetStream has.
//
// Submit publishes asynchronously, in submission order, on the Log's
// connection; the Waiter reports the JetStream ack (nil: stored by a
// majority of replicas) or the failure. A failed record is not retried
// here: ingest answers Unavailable, the device keeps the message and sends
// it again, and the stream's Nats-Msg-Id window stores it once even if the
// first copy was stored after all.
type Store struct {
	log     *Log
	timeout time.Duration
}

// Store returns the ingest.Store adapter; timeout bounds the wait for each
// ack (default 5 s).
func (l *Log) Store(timeout time.Duration) *Store {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Store{log: l, timeout: timeout}
}

var _ ingest.Store = (*Store)(nil)

// Submit publishes one record in telemetry's binary encoding.
func (s *Store) Submit(payload []byte) ingest.Waiter {
	w := &waiter{done: make(chan struct{})}
	var rec telemetry.Record
	if err := rec.UnmarshalBinary(payload); err != nil {
		w.finish(fmt.Errorf("cluster: decode record: %w", err))
		return w
	}
	msg, err := s.log.message(&rec, bytes.Clone(payload))
	if err != nil {
		w.finish(err)
		return w
	}
	fut, err := s.log.js.PublishMsgAsync(msg, jetstream.WithExpectStream(s.log.o.Stream))
	if err != nil {
		w.finish(fmt.Errorf("cluster: publish %s: %w", msg.Subject, err))
		return w
	}
	go func() {
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		select {
		case <-fut.Ok():
			w.finish(nil)
		case err := <-fut.Err():
			w.finish(fmt.Errorf("cluster: publish %s: %w", msg.Subject, err))
		case <-t.C:
			w.finish(fmt.Errorf("cluster: publish %s: %w", msg.Subject, errors.Join(nats.ErrTimeout, errors.New("no JetStream ack"))))
		}
	}()
	return w
}

type waiter struct {
	done chan struct{}
	err  error
}

func (w *waiter) finish(err error) {
	w.err = err
	close(w.done)
}

// Wait blocks until the record is stored (nil) or failed.
func (w *waiter) Wait() error {
	<-w.done
	return w.err
}

// Done is closed when Wait would not block.
func (w *waiter) Done() <-chan struct{} { return w.done }

// transient reports whether a JetStream request failed for want of an
// answer (no leader yet, an election, a reply lost on a route), not because
// it was refused.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// openRetry runs open, an idempotent create-or-update of a stream or
// bucket, with a short deadline per attempt until it succeeds, is refused,
// or ctx ends: on a cluster that has just formed or is electing a leader a
// JetStream API request can go unanswered although the work was done.
func openRetry[T any](ctx context.Context, open func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := open(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// awaitBucket returns once the KV bucket's stream answers reads: a bucket
// just created on a fresh cluster has no stream leader for a moment, and
// its first requests find no responders.
func awaitBucket(ctx context.Context, kv jetstream.KeyValue) error {
	for {
		_, err := kv.Get(ctx, "probe")
		if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: bucket %s has no leader: %w", kv.Bucket(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
