package simulators

import (
	"bytes"
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// groupSize is how many devices share one goroutine and one ticker.
const groupSize = 250

// maxPending bounds the publish tokens a group watches; beyond it the oldest
// are no longer counted in the metrics (paho still delivers them).
const maxPending = 64 * groupSize

// model is a device's behaviour: Step advances it to now and appends what
// it publishes then.
type model interface {
	Step(now time.Time, out []telemetry.Record) []telemetry.Record
}

// simDevice is a model wired to its MQTT session.
type simDevice struct {
	conn   *devConn
	model  model
	form   wire.TSForm
	topics [telemetry.KindDepth + 1]string // by Kind
}

func newSimDevice(conn *devConn, m model, form wire.TSForm, kinds ...telemetry.Kind) *simDevice {
	d := &simDevice{conn: conn, model: m, form: form}
	for _, k := range kinds {
		d.topics[k] = telemetry.Topic(conn.id, k)
	}
	return d
}

// group is devices stepped together on one ticker.
type group struct {
	devs     []*simDevice
	interval time.Duration
	phase    time.Duration // delay before the first tick, to spread groups
	recs     []telemetry.Record
	buf      []byte
	pending  []pendingPub
}

type pendingPub struct {
	tok  mqtt.Token
	kind telemetry.Kind
}

// makeGroups cuts devs into groups ticking every interval, their first ticks
// spread evenly over one interval.
func makeGroups(devs []*simDevice, interval time.Duration) []*group {
	var gs []*group
	for i := 0; i < len(devs); i += groupSize {
		gs = append(gs, &group{devs: devs[i:min(i+groupSize, len(devs))], interval: interval})
	}
	for i, g := range gs {
		g.phase = interval * time.Duration(i) / time.Duration(len(gs))
	}
	return gs
}

// runGroup ticks g until ctx is done.
func (r *runner) runGroup(ctx context.Context, g *group) {
	if g.phase > 0 {
		t := time.NewTimer(g.phase)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tk := time.NewTicker(g.interval)
	defer tk.Stop()
	for {
		r.tick(g)
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// tick steps every device of g to now and publishes what it produced. A
// device that has not connected yet is stepped but stays silent.
func (r *runner) tick(g *group) {
	r.reap(g, false)
	now := r.o.Now()
	for _, d := range g.devs {
		g.recs = d.model.Step(now, g.recs[:0])
		if !d.conn.ready.Load() {
			continue
		}
		for i := range g.recs {
			rec := &g.recs[i]
			g.buf = wire.Append(g.buf[:0], rec, d.form)
			// paho keeps the payload until the PUBACK (and in its store), so
			// each message gets its own copy of the scratch buffer.
			tok := d.conn.client.Publish(d.topics[rec.Kind], 1, false, bytes.Clone(g.buf))
			g.pending = append(g.pending, pendingPub{tok: tok, kind: rec.Kind})
		}
	}
	clear(g.recs)
}

// reap counts the publishes of g that completed since the last tick; with
// final, failures are not counted.
func (r *runner) reap(g *group, final bool) {
	keep := g.pending[:0]
	for _, p := range g.pending {
		select {
		case <-p.tok.Done():
			if p.tok.Error() != nil {
				if !final {
					r.m.publishErrors.Inc()
				}
			} else {
				r.m.published[p.kind].Inc()
			}
		default:
			keep = append(keep, p)
		}
	}
	if over := len(keep) - maxPending; over > 0 {
		keep = append(keep[:0], keep[over:]...)
	}
	clear(g.pending[len(keep):])
	g.pending = keep
}
