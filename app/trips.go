package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The trips stage drains the engine's finished trips from the alert
// journal into InfluxDB (measurement truck_trip) and the console's trip
// log, and acknowledges a batch only once both have it:
//
//	alert journal --cursor "trips"--> InfluxDB truck_trip, console
//
// Both sinks are idempotent (a point rewritten overwrites itself; the trip
// log keeps one trip per id), so a batch replayed after a crash is
// harmless.
const tripsCursor = "trips"

type tripStage struct {
	cursor  *spool.Cursor
	write   func(ctx context.Context, lines []byte) error
	console func(t *telemetry.Trip)
	log     zerolog.Logger
	written prometheus.Counter
	failed  prometheus.Counter
	// backoff between failed writes; doubled up to a minute.
	backoff time.Duration
}

func newTripStage(cursor *spool.Cursor, write func(context.Context, []byte) error, console func(*telemetry.Trip),
	log zerolog.Logger, reg prometheus.Registerer) (*tripStage, error) {
	s := &tripStage{cursor: cursor, write: write, console: console, log: log, backoff: time.Second,
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_trips_written_total",
			Help: "Finished trips written to InfluxDB (truck_trip)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_trips_write_failures_total",
			Help: "Failed writes of trips to InfluxDB (retried)."}),
	}
	for _, c := range []prometheus.Collector{s.written, s.failed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("trips stage metrics: %w", err)
		}
	}
	return s, nil
}

// Run drains the journal until ctx ends.
func (s *tripStage) Run(ctx context.Context) error {
	for {
		b, err := s.cursor.Next(ctx, 256, 1<<20)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("trips: read journal: %w", err)
		}
		var lines []byte
		var trips []*telemetry.Trip
		for _, rec := range b.Records {
			_, js, err := decodeJournal(rec)
			if err != nil {
				continue
			}
			if t := tripOf(js); t != nil {
				trips = append(trips, t)
				if len(lines) > 0 {
					lines = append(lines, '\n')
				}
				lines = influx.AppendTripLine(lines, t)
			}
		}
		if len(trips) > 0 {
			if !s.store(ctx, lines) {
				return nil
			}
			if s.console != nil {
				for _, t := range trips {
					s.console(t)
				}
			}
			s.written.Add(float64(len(trips)))
		}
		if err := s.cursor.Ack(b); err != nil {
			return fmt.Errorf("trips: ack journal: %w", err)
		}
	}
}

// store writes lines until InfluxDB takes them; a refusal of the lines
// themselves is logged and dropped (the trips stay in the console's log).
func (s *tripStage) store(ctx context.Context, lines []byte) bool {
	delay := s.backoff
	for {
		err := s.write(ctx, lines)
		if err == nil {
			return true
		}
		s.failed.Inc()
		var we *influx.WriteError
		if errors.As(err, &we) && !we.Retry {
			s.log.Error().Err(err).Msg("InfluxDB refused trip lines; they are kept in the console's trip log only")
			return true
		}
		s.log.Warn().Err(err).Dur("retry_in", delay).Msg("write trips to InfluxDB")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// newTripStage builds the trips stage on the InfluxDB the writer drains to
// (known once Run has started a managed one).
func (a *App) newTripStage() (*tripStage, error) {
	cur, err := a.journal.Cursor(tripsCursor)
	if err != nil {
		return nil, fmt.Errorf("alert journal cursor %s: %w", tripsCursor, err)
	}
	wo := influx.WriteOptions{URL: a.influx, Token: a.cfg.Influx.Token, Bucket: a.cfg.Influx.Bucket(), Timeout: a.cfg.Influx.Timeout}
	var console func(*telemetry.Trip)
	if a.console != nil {
		console = a.console.AddTrip
	}
	return newTripStage(cur, func(ctx context.Context, lines []byte) error { return influx.WriteLines(ctx, wo, lines) },
		console, a.log.With().Str("component", "trips").Logger(), a.metrics)
}
