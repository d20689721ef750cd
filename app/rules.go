package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/atomicfile"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The rules stage runs the engine over the telemetry spool in arrival order
// and writes every alert event to the alert journal, a spool of its own
// that the MQTT publisher (and the alerting stage) drain with their own
// cursors:
//
//	spool --cursor "rules"--> engine --> alert journal --cursor "mqtt"--> broker
//
// Restart without repeats: every snapshotEvery the stage encodes the
// engine's state and, on a goroutine of its own while evaluation goes on,
// waits for the journal to be durable up to that point, writes the snapshot
// with the journal's event count, and only then acknowledges the telemetry
// the snapshot covers.
// After a crash it restores the snapshot and re-evaluates the records
// after it; the events this produces again were journaled already (their
// keys are read back from the journal) and are suppressed, so nothing is
// announced twice, and whatever cleared while the service was down
// resolves as the replay and the watermark move on.

const (
	snapshotEvery   = 10 * time.Second
	advanceEvery    = time.Second
	rulesBatch      = 1024
	journalCursor   = "rules"
	publisherCursor = "mqtt"
)

// rulesStage is the engine with its durable input and output.
type rulesStage struct {
	engine   *rules.Engine
	input    *spool.Cursor
	journal  *spool.Spool
	held     *spool.Cursor // journal records since the last snapshot
	snapPath string
	now      func() time.Time
	log      zerolog.Logger
	reload   chan *config.City
	// observe, if set, sees every record after the engine (the console).
	observe func(*telemetry.Record)

	seq        uint64        // journal sequence of the next event
	snapSeq    uint64        // seq at the last snapshot; only persist touches it
	snapBusy   chan struct{} // cap 1: held while a snapshot is being made durable
	suppress   map[string]struct{}
	lastCommit *spool.Commit
	failed     error

	suppressed prometheus.Counter
	snapshots  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
}

// journalEntry is one alert event in the journal: its sequence, then the
// JSON the publisher sends.
func encodeJournal(seq uint64, a *telemetry.Alert) ([]byte, error) {
	js, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8, 8+len(js))
	binary.BigEndian.PutUint64(b, seq)
	return append(b, js...), nil
}

// The journal also carries the engine's finished trips, as
// {"trip": {...}} entries between the alert events; every consumer but the
// trips stage skips them.
func encodeTrip(seq uint64, t *telemetry.Trip) ([]byte, error) {
	js, err := json.Marshal(struct {
		Trip *telemetry.Trip `json:"trip"`
	}{t})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8, 8+len(js))
	binary.BigEndian.PutUint64(b, seq)
	return append(b, js...), nil
}

// tripOf returns the trip of a journal entry's JSON, or nil for an alert
// event.
func tripOf(js []byte) *telemetry.Trip {
	if !bytes.HasPrefix(js, []byte(`{"trip":`)) {
		return nil
	}
	var e struct {
		Trip *telemetry.Trip `json:"trip"`
	}
	if json.Unmarshal(js, &e) != nil {
		return nil
	}
	return e.Trip
}

// tripKey is the suppression key of a trip entry.
func tripKey(t *telemetry.Trip) string { return "trip:" + t.ID }

func decodeJournal(p []byte) (uint64, []byte, error) {
	if len(p) < 8 {
		return 0, nil, errors.New("alert journal record too short")
	}
	return binary.BigEndian.Uint64(p), p[8:], nil
}

// newRulesStage opens the engine's state: it restores the last snapshot
// and reads back the events journaled since.
func newRulesStage(city *config.City, sp *spool.Spool, journal *spool.Spool, dataDir string, now func() time.Time,
	log zerolog.Logger, reg prometheus.Registerer) (*rulesStage, error) {
	s := &rulesStage{snapBusy: make(chan struct{}, 1), journal: journal, snapPath: filepath.Join(dataDir, "rules", "state.snap"), now: now, log: log,
		reload: make(chan *config.City, 1), suppress: map[string]struct{}{},
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_rules_replayed_suppressed_total",
			Help: "Alert events re-derived after a restart and not announced again."}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_rules_snapshots_total",
			Help: "Engine snapshots written, by result."}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_city_reloads_total",
			Help: "City configuration reloads, by result (applied, refused)."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{s.suppressed, s.snapshots, s.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rules stage metrics: %w", err)
		}
	}
	var err error
	s.engine, err = rules.New(rules.Options{City: city, Sink: rules.SinkFunc(s.emit), Trips: s, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	if s.input, err = sp.Cursor("rules"); err != nil {
		return nil, fmt.Errorf("rules cursor: %w", err)
	}
	if s.held, err = journal.Cursor(journalCursor); err != nil {
		return nil, fmt.Errorf("alert journal cursor: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.snapPath), 0o755); err != nil {
		return nil, fmt.Errorf("rules state dir: %w", err)
	}
	if b, err := os.ReadFile(s.snapPath); err == nil {
		if len(b) < 8 {
			log.Warn().Str("file", s.snapPath).Msg("rules snapshot truncated; starting empty")
		} else if err := s.engine.Restore(b[8:]); err != nil {
			log.Warn().Err(err).Msg("rules snapshot unreadable; starting empty and re-evaluating what the spool holds")
		} else {
			s.snapSeq = binary.BigEndian.Uint64(b)
			log.Info().Str("watermark", s.engine.Watermark().Format(time.RFC3339)).Msg("rules state restored")
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read rules snapshot: %w", err)
	}
	s.seq = s.snapSeq
	err = journal.Scan(func(p []byte) error {
		seq, js, err := decodeJournal(p)
		if err != nil {
			return nil
		}
		if seq >= s.seq {
			s.seq = seq + 1
		}
		if seq < s.snapSeq {
			return nil
		}
		if t := tripOf(js); t != nil {
			s.suppress[tripKey(t)] = struct{}{}
			return nil
		}
		var a telemetry.Alert
		if json.Unmarshal(js, &a) == nil {
			s.suppress[a.Key()] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan alert journal: %w", err)
	}
	if len(s.suppress) > 0 {
		log.Info().Int("events", len(s.suppress)).Msg("alert events since the last snapshot will not be announced again")
	}
	return s, nil
}

// emit journals one event (the engine's Sink).
func (s *rulesStage) emit(a *telemetry.Alert) {
	if _, ok := s.suppress[a.Key()]; ok {
		delete(s.suppress, a.Key())
		s.suppressed.Inc()
		return
	}
	p, err := encodeJournal(s.seq, a)
	if err != nil {
		s.log.Error().Err(err).Str("alert", a.ID).Msg("encode alert")
		return
	}
	s.seq++
	s.lastCommit = s.journal.Submit(p)
	s.log.Info().Str("rule", a.Rule).Str("state", string(a.State)).Str("subject", a.Subject.ID).
		Str("severity", a.Severity).Int("version", a.Version).Msg("alert")
}

// Trip journals one finished trip (the engine's TripSink); like an alert
// event, one already journaled before a crash is not written again.
func (s *rulesStage) Trip(t *telemetry.Trip) {
	if _, ok := s.suppress[tripKey(t)]; ok {
		delete(s.suppress, tripKey(t))
		return
	}
	p, err := encodeTrip(s.seq, t)
	if err != nil {
		s.log.Error().Err(err).Str("trip", t.ID).Msg("encode trip")
		return
	}
	s.seq++
	s.lastCommit = s.journal.Submit(p)
}

// refused counts a reload that failed validation.
func (s *rulesStage) refused() {
	if s != nil {
		s.reloads.WithLabelValues("refused").Inc()
	}
}

// Reload hands a new configuration to the engine's goroutine.
func (s *rulesStage) Reload(c *config.City) {
	select {
	case <-s.reload:
	default:
	}
	s.reload <- c
}

// Run evaluates until ctx is done, then writes a final snapshot.
func (s *rulesStage) Run(ctx context.Context) error {
	batches := make(chan spool.Batch)
	readErr := make(chan error, 1)
	go func() {
		for {
			b, err := s.input.Next(ctx, rulesBatch, 4<<20)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	tick := time.NewTicker(advanceEvery)
	defer tick.Stop()
	var pending *spool.Batch
	lastSnap := s.now()
	var rec telemetry.Record
	for {
		select {
		case b := <-batches:
			s.evaluate(b, &rec)
			pending = &b
		case <-tick.C:
			s.engine.Advance(s.now())
		case c := <-s.reload:
			if err := s.engine.SetCity(c); err != nil {
				s.reloads.WithLabelValues("refused").Inc()
				s.log.Error().Err(err).Msg("rules configuration refused")
			} else {
				s.reloads.WithLabelValues("applied").Inc()
			}
		case err := <-readErr:
			if serr := s.snapshot(pending); serr != nil { // after any snapshot in the background
				s.log.Error().Err(serr).Msg("final rules snapshot")
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("rules input: %w", err)
		}
		if s.now().Sub(lastSnap) >= snapshotEvery && pending != nil && s.snapshotInBackground(pending) {
			pending, lastSnap = nil, s.now()
		}
	}
}

// evaluate runs one batch of spooled records through the engine.
func (s *rulesStage) evaluate(b spool.Batch, rec *telemetry.Record) {
	for _, p := range b.Records {
		if err := rec.UnmarshalBinary(p); err != nil {
			continue // counted and kept by the influx writer's dead letters
		}
		s.engine.Process(rec)
		if s.observe != nil {
			s.observe(rec)
		}
	}
}

// snapshot makes the evaluation up to the end of b durable, waiting for a
// snapshot still being written in the background first (with b nil it only
// waits).
func (s *rulesStage) snapshot(b *spool.Batch) error {
	s.snapBusy <- struct{}{}
	defer func() { <-s.snapBusy }()
	if b == nil {
		return nil
	}
	state, err := s.engine.Snapshot()
	if err != nil {
		s.snapshots.WithLabelValues("failed").Inc()
		return err
	}
	return s.persist(s.lastCommit, s.seq, state, *b)
}

// snapshotInBackground encodes the engine's state as of the end of b and
// makes it durable on another goroutine, so that evaluation does not stop for
// the half-dozen fsyncs that takes (each up to 100 ms on a busy disk; alerts
// would wait behind them). It returns false, doing nothing, while the previous
// snapshot is still being written.
func (s *rulesStage) snapshotInBackground(b *spool.Batch) bool {
	select {
	case s.snapBusy <- struct{}{}:
	default:
		return false
	}
	state, err := s.engine.Snapshot()
	if err != nil {
		<-s.snapBusy
		s.snapshots.WithLabelValues("failed").Inc()
		s.log.Error().Err(err).Msg("rules snapshot")
		return true // try again after snapshotEvery, not on every batch
	}
	commit, seq, batch := s.lastCommit, s.seq, *b
	go func() {
		defer func() { <-s.snapBusy }()
		if err := s.persist(commit, seq, state, batch); err != nil {
			s.log.Error().Err(err).Msg("rules snapshot")
		}
	}()
	return true
}

// persist makes a snapshot durable: the journal up to commit first, then the
// state with the journal's event count seq, then the acknowledgement of the
// telemetry it covers (up to the end of b), then the release of the journal
// records before it. The caller holds snapBusy.
func (s *rulesStage) persist(commit *spool.Commit, seq uint64, state []byte, b spool.Batch) (err error) {
	defer func() {
		if err != nil {
			s.snapshots.WithLabelValues("failed").Inc()
		}
	}()
	if commit != nil {
		if err := commit.Wait(); err != nil {
			return fmt.Errorf("alert journal: %w", err)
		}
	}
	buf := make([]byte, 8, 8+len(state))
	binary.BigEndian.PutUint64(buf, seq)
	if err := atomicfile.Write(s.snapPath, append(buf, state...), 0o644); err != nil {
		return err
	}
	if err := s.input.Ack(b); err != nil {
		return fmt.Errorf("ack rules input: %w", err)
	}
	// Release journal records before the snapshot for deletion.
	for released := s.snapSeq; released < seq; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hb, err := s.held.Next(ctx, rulesBatch, 4<<20)
		cancel()
		if err != nil {
			break
		}
		if err := s.held.Ack(hb); err != nil {
			return fmt.Errorf("ack alert journal: %w", err)
		}
		released += uint64(len(hb.Records))
	}
	s.snapSeq = seq
	s.snapshots.WithLabelValues("ok").Inc()
	return nil
}

// alertPublisher sends journaled alerts on MQTT, QoS 1, in journal order,
// acknowledging each batch after the broker has taken it. When the broker
// drops an alert for a subscriber whose queue is full, publish fails and the
// alert is published again 50 ms later: subscribers get every alert at least
// once and recognise repeats by id and version.
type alertPublisher struct {
	cursor  *spool.Cursor
	publish func(topic string, payload []byte) error
	log     zerolog.Logger
	sent    prometheus.Counter
}

func (p *alertPublisher) Run(ctx context.Context) error {
	var a telemetry.Alert
	for {
		b, err := p.cursor.Next(ctx, 256, 1<<20)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("alert publisher: %w", err)
		}
		for _, rec := range b.Records {
			_, js, err := decodeJournal(rec)
			if err == nil && tripOf(js) != nil {
				continue // trips are the trips stage's
			}
			if err != nil || json.Unmarshal(js, &a) != nil {
				p.log.Error().Msg("undecodable alert journal record skipped")
				continue
			}
			for {
				if err := p.publish(a.Topic(), js); err == nil {
					break
				} else {
					p.log.Warn().Err(err).Str("topic", a.Topic()).Msg("publish alert; retrying")
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(50 * time.Millisecond):
				}
			}
			p.sent.Inc()
		}
		if err := p.cursor.Ack(b); err != nil {
			return fmt.Errorf("ack alert publisher: %w", err)
		}
	}
}
