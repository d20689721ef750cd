// Package loadgen is a minimal MQTT 3.1.1 publisher for benchmarks: many
// plain-TCP connections, each logging in as one device and publishing QoS 1
// messages with a bounded window of unacknowledged publishes, measuring
// publish→PUBACK latency. Packets are encoded and decoded with the codec of
// github.com/mochi-mqtt/server/v2/packets.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Credential is a device to log in as: MQTT client id and username ID,
// password Secret.
type Credential struct {
	ID, Secret string
}

// Options configures Run.
type Options struct {
	// Addr is the broker's TCP address, "host:port". Required.
	Addr string
	// Devices are the connections to open, one per device. Required.
	Devices []Credential
	// Messages is how many messages each connection publishes (≥ 1).
	Messages int
	// Window is how many QoS 1 publishes a connection keeps unacknowledged
	// at most (default 8, at most 65535).
	Window int
	// Rate caps the total publish rate in messages per second, spread evenly
	// over the connections; 0 publishes as fast as PUBACKs allow.
	Rate int
	// Payload makes the topic and payload of a device's seq-th message
	// (from 0); default: a valid GPS fix on trucks/{dev}/gps. It is called
	// from many goroutines at once.
	Payload func(dev string, seq int, now time.Time) (topic string, payload []byte)
	// Now stamps the default payloads (default time.Now). Latency and
	// Elapsed use the monotonic clock regardless.
	Now func() time.Time
	// AckTimeout fails a connection that waits this long for a PUBACK or
	// CONNACK (default 30s).
	AckTimeout time.Duration
	// Goroutines publishes from a goroutine pair per connection (a writer
	// and a PUBACK reader) instead of the epoll reactor, which drives
	// every connection from one goroutine per CPU. The reactor costs the
	// machine under test about one write and one read per message and
	// is the default on Linux; elsewhere goroutines are always used.
	Goroutines bool
}

// Latency is the distribution of publish→PUBACK times, to within ~5 %.
type Latency struct {
	P50, P99, Max time.Duration
}

// Result is what a Run did.
type Result struct {
	// Sent counts PUBLISH packets written, Acked the PUBACKs that matched an
	// outstanding packet id.
	Sent, Acked int64
	// Elapsed runs from the moment every connection was up (all publishers
	// start together) to the last PUBACK.
	Elapsed time.Duration
	// Latency is publish→PUBACK over all acknowledged messages.
	Latency Latency
	// Errors counts failed connections (dial, CONNACK refused, I/O, ack
	// timeout) and protocol errors such as a PUBACK for an unknown id.
	Errors int64
}

// Run connects every device (at most 256 handshakes at a time), then has all
// of them publish together until each has sent o.Messages and received their
// PUBACKs, and disconnects. It returns the Result and, if any connection
// failed or any protocol error occurred, an error describing them (the
// Result then covers the connections that worked). When ctx is done it
// closes all connections and returns ctx's error.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{o: o}
	var reactors []*reactor
	if haveReactor && !o.Goroutines {
		for range runtime.GOMAXPROCS(0) {
			re, err := newReactor(r)
			if err != nil {
				for _, re := range reactors {
					re.close()
				}
				return Result{}, err
			}
			reactors = append(reactors, re)
		}
	}
	conns := make([]*conn, len(o.Devices))
	var wg sync.WaitGroup
	start := make(chan struct{})
	ready := make(chan struct{}, len(conns))
	sem := make(chan struct{}, maxHandshakes)
	for i, d := range o.Devices {
		c := &conn{run: r, cred: d, index: i}
		if reactors != nil {
			c.reactor = reactors[i%len(reactors)]
		}
		conns[i] = c
		wg.Go(func() {
			// A connection cut short by ctx is reported by Run's own error.
			if err := c.serve(ctx, sem, ready, start); err != nil && ctx.Err() == nil {
				r.fail(fmt.Errorf("device %s: %w", d.ID, err))
			}
		})
	}
	for range conns {
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	r.t0 = time.Now()
	close(start)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		var rs sync.WaitGroup
		for _, re := range reactors {
			rs.Go(func() { re.loop(ctx) })
		}
		rs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		<-done
	}
	res := Result{
		Sent:   r.sent.Load(),
		Acked:  r.acked.Load(),
		Errors: r.errs.Load(),
	}
	if last := r.lastAck.Load(); last > 0 {
		res.Elapsed = time.Duration(last)
	}
	res.Latency = Latency{P50: r.hist.quantile(0.5), P99: r.hist.quantile(0.99), Max: r.hist.max()}
	if err := ctx.Err(); err != nil && !r.finished(len(conns)) {
		return res, fmt.Errorf("loadgen: stopped with %d of %d connections completed: %w", r.done.Load(), len(conns), err)
	}
	return res, r.err(len(conns))
}

const (
	maxHandshakes = 256
	maxErrReport  = 5
)

func (o *Options) defaults() error {
	switch {
	case o.Addr == "":
		return errors.New("loadgen: Addr is required")
	case len(o.Devices) == 0:
		return errors.New("loadgen: no Devices")
	case o.Messages < 1:
		return errors.New("loadgen: Messages must be at least 1")
	case o.Window < 0 || o.Window > math.MaxUint16:
		return errors.New("loadgen: Window must be in 1..65535")
	case o.Rate < 0:
		return errors.New("loadgen: Rate must not be negative")
	}
	if o.Window == 0 {
		o.Window = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Payload == nil {
		o.Payload = DefaultPayload
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 30 * time.Second
	}
	return nil
}

// DefaultPayload is a valid GPS fix of dev for trucks/{dev}/gps: a point
// circling Weifang's centre, ts in RFC 3339 at +08:00.
func DefaultPayload(dev string, seq int, now time.Time) (string, []byte) {
	a := float64(seq) / 60
	r := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Seq: uint64(seq), TS: now},
		Fix: telemetry.Fix{Lat: 36.71 + 0.01*math.Sin(a), Lon: 119.16 + 0.012*math.Cos(a), SpeedKmh: 35,
			Heading: math.Mod(a*180/math.Pi+270, 360), Sats: 10, Valid: true}}
	return telemetry.Topic(dev, telemetry.KindGPS), wire.Append(make([]byte, 0, 160), &r, wire.RFC3339)
}

// run is the shared state of one Run.
type run struct {
	o       Options
	t0      time.Time // publishers start
	sent    atomic.Int64
	acked   atomic.Int64
	errs    atomic.Int64
	done    atomic.Int64 // connections that finished cleanly
	lastAck atomic.Int64 // ns after t0
	hist    histogram

	mu     sync.Mutex
	failed []error
	nFail  int
}

// fail records a failed connection or protocol error.
func (r *run) fail(err error) {
	r.errs.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nFail++
	if len(r.failed) < maxErrReport {
		r.failed = append(r.failed, err)
	}
}

func (r *run) finished(n int) bool { return r.done.Load() == int64(n) }

func (r *run) err(n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nFail == 0 {
		return nil
	}
	return fmt.Errorf("loadgen: %d errors (%d of %d connections completed), first: %w",
		r.nFail, r.done.Load(), n, errors.Join(r.failed...))
}
