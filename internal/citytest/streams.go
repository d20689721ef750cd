package citytest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// ReadStream reads every message stream holds now, in order. A fetch the
// server leaves unanswered is tried again until ctx ends, and after two empty
// fetches in a row the ordered consumer is made again from the next sequence:
// one created while the JetStream meta leader changed can be lost by the
// server, and its fetches then come back empty for good.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(jetstream.Msg) error) error {
	var want, read, next uint64
	var cons jetstream.Consumer
	empty := 0
	for first := true; ; {
		if cons == nil || empty >= 2 {
			cfg := jetstream.OrderedConsumerConfig{}
			if next > 0 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, next
			}
			c, err := js.OrderedConsumer(ctx, stream, cfg)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("read %s: %w", stream, err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			cons, empty = c, 0
			if first {
				want, first = c.CachedInfo().NumPending, false
			}
		}
		if read >= want {
			return nil
		}
		b, err := cons.Fetch(int(min(want-read, 1024)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m := range b.Messages() {
			if err := fn(m); err != nil {
				return err
			}
			if md, err := m.Metadata(); err == nil {
				next = md.Sequence.Stream + 1
			}
			read++
			n++
		}
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read %s: %d of %d messages: %w", stream, read, want, ctx.Err())
		}
	}
}

// EventIDs returns the de-duplication ids (Nats-Msg-Id) of every event in
// the output stream, in stream order.
func EventIDs(ctx context.Context, js jetstream.JetStream, stream string) ([]string, error) {
	var ids []string
	err := ReadStream(ctx, js, stream, func(m jetstream.Msg) error {
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
		return nil
	})
	return ids, err
}

// Replay runs one engine over every record of the record stream, in
// stream order, as a single node would, and returns the ids of the alert
// events (id#version) and trips ("trip:" id) it derives.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, city *config.City) (ids []string, records int, err error) {
	eng, err := rules.New(rules.Options{City: city,
		Sink:  rules.SinkFunc(func(a *telemetry.Alert) { ids = append(ids, a.Key()) }),
		Trips: tripFunc(func(tr *telemetry.Trip) { ids = append(ids, "trip:"+tr.ID) })})
	if err != nil {
		return nil, 0, err
	}
	err = ReadStream(ctx, js, stream, func(m jetstream.Msg) error {
		var rec telemetry.Record
		if err := rec.UnmarshalBinary(m.Data()); err != nil {
			return err
		}
		eng.Process(&rec)
		records++
		return nil
	})
	return ids, records, err
}

type tripFunc func(*telemetry.Trip)

func (f tripFunc) Trip(t *telemetry.Trip) { f(t) }
