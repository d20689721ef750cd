package citytest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// ReadStream reads every message stream holds now, in order, one by one by
// sequence (a stream get, not a consumer: an ephemeral consumer created while
// the JetStream meta leader changes can be lost by the server, and a test
// would wait on it for good). A get that fails while a stream leader is being
// elected is tried again until ctx ends.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(*jetstream.RawStreamMsg) error) error {
	var s jetstream.Stream
	for {
		var err error
		if s, err = js.Stream(ctx, stream); err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.LastSeq > 0 && seq <= st.LastSeq; {
		m, err := s.GetMsg(ctx, seq)
		switch {
		case err == nil:
			if err := fn(m); err != nil {
				return err
			}
			seq++
		case errors.Is(err, jetstream.ErrMsgNotFound):
			seq++ // deleted
		case ctx.Err() != nil:
			return fmt.Errorf("read %s at %d of %d: %w", stream, seq, st.LastSeq, err)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// EventIDs returns the de-duplication ids (Nats-Msg-Id) of every event in
// the output stream, in stream order.
func EventIDs(ctx context.Context, js jetstream.JetStream, stream string) ([]string, error) {
	var ids []string
	err := ReadStream(ctx, js, stream, func(m *jetstream.RawStreamMsg) error {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
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
	err = ReadStream(ctx, js, stream, func(m *jetstream.RawStreamMsg) error {
		var rec telemetry.Record
		if err := rec.UnmarshalBinary(m.Data); err != nil {
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
