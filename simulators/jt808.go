package simulators

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest/jt808"
	"github.com/urbanwatch/urbanwatch/simulators/jt808client"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Limits of a simulated JT/T 808 terminal.
const (
	jt808MaxStored = 1024 // reports kept while the platform is unreachable (a terminal's blind-area memory)
	jt808History   = 4096 // sensor states remembered to date back-filled fixes
)

// jt808Truck is a truck whose terminal speaks JT/T 808: its registry
// identity and its model.
type jt808Truck struct {
	id, phone, code string
	model           model
}

// jt808Trucks looks up the JT/T 808 identity of each truck.
func jt808Trucks(reg *config.Registry, trucks []credential, models []model) ([]jt808Truck, error) {
	out := make([]jt808Truck, 0, len(trucks))
	for i, c := range trucks {
		d, ok := reg.Lookup(c.id)
		code, okCode := reg.JT808AuthCode(c.id)
		if !ok || d.JT808 == nil || !okCode {
			return nil, fmt.Errorf("simulators: truck %s has no JT/T 808 identity with a derivable code in the registry (fleet jt808.phone_prefix)", c.id)
		}
		out = append(out, jt808Truck{id: c.id, phone: d.JT808.Phone, code: code, model: models[i]})
	}
	return out, nil
}

// sensorAt is a sensor state and its time.
type sensorAt struct {
	ts time.Time
	s  telemetry.SensorState
}

// runJT808Truck plays one truck over JT/T 808 until ctx is done: every
// FixInterval it steps the model and sends the live fix as a location
// report (0x0200) carrying the sensor state of that moment (the default
// profile's items), and fixes buffered in a signal gap, or left unanswered
// while the platform was unreachable, as blind-area batches (0x0704). It
// connects, registers and authenticates at the shared pacer's rate, and
// again after any failure.
func (r *runner) runJT808Truck(ctx context.Context, t jt808Truck, phase time.Duration) {
	var (
		c       *jt808client.Client
		stored  []jt808.Location
		hist    []sensorAt
		recs    []telemetry.Record
		backoff = time.Second
		retryAt time.Time
	)
	defer func() {
		if c != nil {
			c.Close()
			r.m.connected.Dec()
		}
	}()
	sensorsAt := func(ts time.Time) *telemetry.SensorState {
		i := sort.Search(len(hist), func(i int) bool { return hist[i].ts.After(ts) })
		if i == 0 {
			return nil
		}
		return &hist[i-1].s
	}
	timer := time.NewTimer(phase)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(r.o.FixInterval)
		now := r.o.Now()
		recs = t.model.Step(now, recs[:0])
		for i := range recs {
			if rec := &recs[i]; rec.Kind == telemetry.KindSensors {
				hist = append(hist, sensorAt{rec.TS, rec.Sensors})
			}
		}
		sort.SliceStable(hist, func(i, j int) bool { return hist[i].ts.Before(hist[j].ts) })
		if len(hist) > jt808History {
			hist = append(hist[:0], hist[len(hist)-jt808History:]...)
		}
		var live *jt808.Location
		for i := range recs {
			if rec := &recs[i]; rec.Kind == telemetry.KindGPS {
				l := jt808client.Location(rec, sensorsAt(rec.TS))
				if live == nil && i == 0 {
					live = &l // Step puts the live fix first, back-filled ones after it
				} else {
					stored = append(stored, l)
				}
			}
		}
		if c == nil && now.After(retryAt) {
			var err error
			if c, err = r.jt808Connect(ctx, t); err != nil {
				r.m.connectFailures.Inc()
				r.logs.warn("simulated JT/T 808 terminal failed to connect; retrying", t.id, err)
				retryAt = now.Add(backoff)
				backoff = min(2*backoff, maxConnBackoff)
			} else {
				backoff = time.Second
				r.m.connected.Inc()
			}
		}
		if c == nil {
			if live != nil {
				stored = append(stored, *live)
			}
			if over := len(stored) - jt808MaxStored; over > 0 {
				stored = append(stored[:0], stored[over:]...)
			}
			continue
		}
		ok := true
		if live != nil {
			ok = r.jt808Send(t, c, []jt808.Location{*live}, false)
			if !ok {
				stored = append(stored, *live)
			}
		}
		if ok && len(stored) > 0 {
			sort.SliceStable(stored, func(i, j int) bool { return stored[i].Time.Before(stored[j].Time) })
			if ok = r.jt808Send(t, c, stored, true); ok {
				stored = stored[:0]
			}
		}
		if !ok {
			c.Close()
			c = nil
			r.m.connected.Dec()
		}
	}
}

// jt808Connect dials, registers and authenticates one terminal.
func (r *runner) jt808Connect(ctx context.Context, t jt808Truck) (*jt808client.Client, error) {
	if err := r.pacer.wait(ctx); err != nil {
		return nil, err
	}
	c, err := jt808client.Dial(ctx, r.o.JT808, jt808client.Options{Phone: t.phone, Timeout: writeTimeout})
	if err != nil {
		return nil, err
	}
	code := t.code
	rr, err := c.Register(jt808.Register{Province: 37, City: 700, Maker: "UWSIM", Model: "UW-SIM-808", TerminalID: t.id})
	if err == nil && rr.Result == jt808.RegisterOK {
		code = rr.AuthCode
	}
	if err == nil {
		err = c.Authenticate(code)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// jt808Send sends live fixes (0x0200 each) or back-filled ones (0x0704)
// and reports whether the platform answered; a refusal of a report as bad
// is counted as a publish error and not sent again.
func (r *runner) jt808Send(t jt808Truck, c *jt808client.Client, ls []jt808.Location, backfill bool) bool {
	var res byte
	var err error
	if backfill {
		res, err = c.Backfill(ls)
	} else {
		res, err = c.Report(&ls[0])
	}
	switch {
	case err != nil || res == jt808.ResultFailure:
		r.logs.warn("simulated JT/T 808 report not stored; reconnecting", t.id, fmt.Errorf("result %d: %v", res, err))
		return false
	case res != jt808.ResultOK:
		r.m.publishErrors.Inc()
	default:
		for i := range ls {
			r.m.published[telemetry.KindGPS].Inc()
			if _, ok := ls[i].Extra(0xE1); ok {
				r.m.published[telemetry.KindSensors].Inc()
			}
		}
	}
	return true
}
