package simulators

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTT client settings of a simulated device.
const (
	keepAlive       = 60 * time.Second
	connectTimeout  = 10 * time.Second
	writeTimeout    = 10 * time.Second
	maxReconnect    = 30 * time.Second
	maxConnBackoff  = 30 * time.Second
	disconnectQuiet = 250 // ms to let in-flight publishes finish at shutdown
	disconnectPar   = 256 // parallel disconnects at shutdown
)

// devConn is one device's MQTT session.
type devConn struct {
	id     string
	client mqtt.Client
	// ready is set once the first connection succeeded. From then on paho
	// owns delivery: while it reconnects, QoS 1 publishes wait in its
	// in-memory store and are resent on the new connection.
	ready atomic.Bool
	up    atomic.Bool // the connection is open now (for connected_devices)
}

// newConn makes the paho client of a device: its own credentials, QoS 1
// with a persistent session (CleanSession false), an in-memory store,
// auto-reconnect paced by the shared pacer.
func (r *runner) newConn(ctx context.Context, c credential) *devConn {
	d := &devConn{id: c.id}
	opts := mqtt.NewClientOptions().
		AddBroker(r.o.Broker).
		SetClientID(c.id).
		SetUsername(c.id).
		SetPassword(c.secret).
		SetCleanSession(false).
		SetStore(mqtt.NewMemoryStore()).
		SetAutoReconnect(true).
		SetConnectRetry(false). // Run retries the first connect itself, paced
		SetMaxReconnectInterval(maxReconnect).
		SetKeepAlive(keepAlive).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetOrderMatters(false).
		SetOnConnectHandler(func(mqtt.Client) {
			if !d.up.Swap(true) {
				r.m.connected.Inc()
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			if d.up.Swap(false) {
				r.m.connected.Dec()
			}
			r.logs.warn("simulated device lost its connection; reconnecting", d.id, err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			_ = r.pacer.wait(ctx) // returns at once when ctx is done
		})
	if r.plainTCP {
		opts.SetCustomOpenConnectionFn(dialBuffered)
	}
	d.client = mqtt.NewClient(opts)
	return d
}

// connectAll starts connecting every device at the pacer's rate and returns
// when each has connected or given up because ctx is done.
func (r *runner) connectAll(ctx context.Context, devs []*simDevice) {
	var wg sync.WaitGroup
	for _, d := range devs {
		if r.pacer.wait(ctx) != nil {
			break
		}
		wg.Go(func() { r.connect(ctx, d.conn) })
	}
	wg.Wait()
}

// connect makes the first connection of a device, retrying with backoff
// (1 s doubling to 30 s, ±20 %) until it succeeds or ctx is done. Failures
// are logged at a bounded rate.
func (r *runner) connect(ctx context.Context, d *devConn) {
	backoff := time.Second
	for {
		tok := d.client.Connect()
		<-tok.Done() // bounded by connectTimeout
		err := tok.Error()
		if err == nil {
			d.ready.Store(true)
			return
		}
		r.m.connectFailures.Inc()
		r.logs.warn("simulated device failed to connect; retrying", d.id, err)
		t := time.NewTimer(time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxConnBackoff)
		if r.pacer.wait(ctx) != nil {
			return
		}
	}
}

// disconnectAll closes every session that was ever up.
func (r *runner) disconnectAll(devs []*simDevice) {
	sem := make(chan struct{}, disconnectPar)
	var wg sync.WaitGroup
	for _, d := range devs {
		if !d.conn.ready.Load() {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.conn.client.Disconnect(disconnectQuiet)
			if d.conn.up.Swap(false) {
				r.m.connected.Dec()
			}
		})
	}
	wg.Wait()
}
