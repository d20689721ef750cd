package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Defaults of RulesOptions.
const (
	DefaultCheckpointEvery = 10 * time.Second
	defaultAdvanceEvery    = time.Second
	// maxPendingEvents bounds the events published and not yet acked
	// before the worker waits for their acks.
	maxPendingEvents = 512
)

// RulesOptions configures the rules worker. Log, States, Output and City
// are required.
type RulesOptions struct {
	Log    *Log
	States *States
	Output *Output
	// City is the supervision model the partitions' engines start with;
	// SetCity replaces it.
	City *config.City
	// Now is the clock; default time.Now.
	Now func() time.Time
	// CheckpointEvery is how often a partition saves its state; default
	// DefaultCheckpointEvery. It bounds the replay after a worker dies.
	CheckpointEvery time.Duration
	// MaxAhead is passed to every engine (rules.Options.MaxAhead).
	MaxAhead time.Duration
	// Observe, if set, sees every record after its partition's engine,
	// from the partition's goroutine (several partitions call it at once).
	Observe func(p int, rec *telemetry.Record)
	Logger  zerolog.Logger
	// Registerer, if not nil, gets the urbanwatch_cluster_rules_* metrics.
	Registerer prometheus.Registerer
}

// Rules is the rules worker: Run is the PartitionFunc an Assigner calls
// for every partition this worker owns. Each partition has an engine of
// its own (rules.Engine, owning the partition's devices), fed the
// partition's records in stream order; its alert events and trips go to
// the Output stream with their keys as de-duplication ids.
//
// Exactly once, across a takeover: a checkpoint (KV, under the lease's
// fencing token) holds the engine's snapshot, the last record sequence it
// covers, and the Output sequence up to which the events it caused are
// stored; it is saved only after every event published before it is acked.
// A new owner restores it, reads the ids of the partition's events stored
// after that Output sequence (the previous owner's work since its last
// checkpoint), and replays the records after the covered sequence; the
// events the replay derives again that are among those ids are
// suppressed, and any other repeat (a paused owner's late publish) is
// stopped by the Output stream's de-duplication window.
type Rules struct {
	o    RulesOptions
	city atomic.Pointer[config.City]

	records    prometheus.Counter
	events     prometheus.Counter
	suppressed prometheus.Counter
	saves      *prometheus.CounterVec
	owned      prometheus.Gauge
}

// NewRules returns the worker.
func NewRules(o RulesOptions) (*Rules, error) {
	if o.Log == nil || o.States == nil || o.Output == nil || o.City == nil {
		return nil, errors.New("cluster: rules worker needs Log, States, Output and City")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	r := &Rules{o: o,
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_cluster_rules_records_total",
			Help: "Records evaluated by this worker's partitions (replays included)."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_cluster_rules_events_total",
			Help: "Alert events and trips published to the output stream."}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_cluster_rules_suppressed_total",
			Help: "Events re-derived after a takeover that the previous owner had published already."}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_cluster_rules_checkpoints_total",
			Help: "Partition checkpoints, by result (ok, failed, fenced)."}, []string{"result"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "urbanwatch_cluster_rules_partitions",
			Help: "Partitions this worker runs."}),
	}
	r.city.Store(o.City)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.records, r.events, r.suppressed, r.saves, r.owned} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cluster rules metrics: %w", err)
			}
		}
	}
	return r, nil
}

// SetCity hands a new validated configuration to every partition's engine
// (applied between two records, keeping every subject's state) and to the
// partitions started later.
func (r *Rules) SetCity(c *config.City) { r.city.Store(c) }

// checkpoint data: the Output sequence (8 bytes, big endian), then the
// engine snapshot.
func encodeState(outSeq uint64, snap []byte) []byte {
	b := make([]byte, 8, 8+len(snap))
	binary.BigEndian.PutUint64(b, outSeq)
	return append(b, snap...)
}

// partition is one owned partition's running state.
type partition struct {
	r      *Rules
	p      int
	engine *rules.Engine
	// suppress holds the predecessor's events not yet derived again, with
	// their UW_ALERTS sequences.
	suppress map[string]uint64
	pending  []pendingEvent
	outSeq   uint64 // every event of this partition up to here is stored
	failed   error
	log      zerolog.Logger
}

type pendingEvent struct {
	id      string
	payload []byte
	fut     jetstream.PubAckFuture
}

type item struct {
	seq uint64
	rec telemetry.Record
}

// Run owns partition lease.Partition until ctx ends (see Rules).
func (r *Rules) Run(ctx context.Context, lease *Lease) error {
	p := lease.Partition
	log := r.o.Logger.With().Int("partition", p).Logger()
	cp, err := r.o.States.Load(ctx, p)
	if err != nil {
		return err
	}
	pt := &partition{r: r, p: p, log: log}
	city := r.city.Load()
	pt.engine, err = rules.New(rules.Options{City: city, Sink: rules.SinkFunc(pt.emit), Trips: pt,
		MaxAhead: r.o.MaxAhead, Logger: log,
		Owns: func(device string) bool { return r.o.Log.PartitionOf(device) == p }})
	if err != nil {
		return fmt.Errorf("cluster: partition %d engine: %w", p, err)
	}
	if len(cp.Data) >= 8 {
		pt.outSeq = binary.BigEndian.Uint64(cp.Data[:8])
	}
	// A checkpoint saved only to fence has no snapshot yet.
	if len(cp.Data) > 8 {
		if err := pt.engine.Restore(cp.Data[8:]); err != nil {
			log.Error().Err(err).Uint64("seq", cp.Seq).Msg("partition state unreadable; starting empty from the checkpoint's position")
		}
	}
	ids, last, err := r.o.Output.Published(ctx, p, pt.outSeq+1)
	if err != nil {
		return err
	}
	pt.suppress, pt.outSeq = ids, max(pt.outSeq, last)
	// Save at once under our token: from now on the previous holder's
	// checkpoint writes are fenced.
	if err := r.o.States.Save(ctx, lease, cp.Seq, encodeState(pt.savedOutSeq(), cp.Data[min(8, len(cp.Data)):])); err != nil {
		return err
	}
	log.Info().Uint64("from", cp.Seq+1).Int("announced", len(ids)).Msg("partition resumed")
	r.owned.Inc()
	defer r.owned.Dec()

	rctx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	items := make(chan item, 1024)
	readErr := make(chan error, 1)
	go func() {
		readErr <- r.o.Log.ReadPartition(rctx, p, cp.Seq+1, func(seq uint64, rec *telemetry.Record) error {
			select {
			case items <- item{seq, *rec}:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
	}()
	tick := time.NewTicker(defaultAdvanceEvery)
	defer tick.Stop()
	seq, saved := cp.Seq, cp.Seq
	lastSave := r.o.Now()
	save := func(ctx context.Context) error {
		// Events derived with no record (silences the wall clock found)
		// are saved too.
		if seq == saved && len(pt.pending) == 0 {
			return nil
		}
		if err := pt.flush(ctx); err != nil {
			r.saves.WithLabelValues("failed").Inc()
			return err
		}
		snap, err := pt.engine.Snapshot()
		if err != nil {
			return fmt.Errorf("cluster: partition %d snapshot: %w", p, err)
		}
		if err := r.o.States.Save(ctx, lease, seq, encodeState(pt.savedOutSeq(), snap)); err != nil {
			if errors.Is(err, ErrFenced) {
				r.saves.WithLabelValues("fenced").Inc()
			} else {
				r.saves.WithLabelValues("failed").Inc()
			}
			return err
		}
		r.saves.WithLabelValues("ok").Inc()
		saved = seq
		return nil
	}
	for {
		select {
		case it := <-items:
			pt.engine.Process(&it.rec)
			if r.o.Observe != nil {
				r.o.Observe(p, &it.rec)
			}
			seq = it.seq
			r.records.Inc()
		case <-tick.C:
			if c := r.city.Load(); c != city {
				if err := pt.engine.SetCity(c); err != nil {
					log.Error().Err(err).Msg("rules configuration refused")
				}
				city = c
			}
			pt.engine.Advance(r.o.Now())
		case err := <-readErr:
			if ctx.Err() == nil && err == nil {
				err = errors.New("partition reader stopped")
			}
			if ctx.Err() != nil {
				err = nil
			}
			// Final checkpoint (a handover, or a reader failure that will
			// be retried by the next owner): bounded, with a context that
			// outlives ours.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			serr := save(sctx)
			cancel()
			if serr != nil {
				log.Warn().Err(serr).Msg("final partition checkpoint")
			}
			return err
		}
		if pt.failed != nil {
			return pt.failed
		}
		if len(pt.pending) >= maxPendingEvents {
			if err := pt.flush(ctx); err != nil {
				return err
			}
		}
		if now := r.o.Now(); now.Sub(lastSave) >= r.o.CheckpointEvery {
			if err := save(ctx); err != nil {
				if errors.Is(err, ErrFenced) || ctx.Err() != nil {
					return err
				}
				log.Warn().Err(err).Msg("partition checkpoint; retrying")
			}
			lastSave = now
		}
	}
}

// savedOutSeq is the UW_ALERTS sequence a checkpoint may claim: outSeq,
// but below every predecessor's event the replay has not derived again
// yet, so that the next owner, should this one stop before, reads those
// ids again and still suppresses them.
func (pt *partition) savedOutSeq() uint64 {
	s := pt.outSeq
	for _, seq := range pt.suppress {
		s = min(s, seq-1)
	}
	return s
}

// emit publishes one alert event (the engine's Sink), unless the previous
// owner had published it.
func (pt *partition) emit(a *telemetry.Alert) {
	pt.publish(a.Key(), a)
}

// Trip publishes one finished trip (the engine's TripSink).
func (pt *partition) Trip(t *telemetry.Trip) {
	pt.publish("trip:"+t.ID, struct {
		Trip *telemetry.Trip `json:"trip"`
	}{t})
}

func (pt *partition) publish(id string, v any) {
	if _, ok := pt.suppress[id]; ok {
		delete(pt.suppress, id)
		pt.r.suppressed.Inc()
		return
	}
	payload, err := json.Marshal(v)
	if err != nil {
		pt.log.Error().Err(err).Str("event", id).Msg("encode event")
		return
	}
	ev := pendingEvent{id: id, payload: payload}
	if ev.fut, err = pt.r.o.Output.PublishAsync(pt.p, id, payload); err != nil {
		ev.fut = nil // flush publishes it synchronously
	}
	pt.pending = append(pt.pending, ev)
	pt.r.events.Inc()
}

// flush waits until every pending event is stored, publishing again (same
// id) those whose asynchronous publish failed, and moves outSeq past them.
func (pt *partition) flush(ctx context.Context) error {
	for _, ev := range pt.pending {
		var seq uint64
		if ev.fut != nil {
			select {
			case ack := <-ev.fut.Ok():
				seq = ack.Sequence
			case <-ev.fut.Err():
			case <-time.After(publishTry):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if seq == 0 {
			ack, err := pt.r.o.Output.Publish(ctx, pt.p, ev.id, ev.payload)
			if err != nil {
				pt.failed = err
				return err
			}
			seq = ack.Seq
		}
		pt.outSeq = max(pt.outSeq, seq)
	}
	pt.pending = pt.pending[:0]
	return nil
}
