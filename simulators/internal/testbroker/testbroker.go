// Package testbroker runs an in-process mochi MQTT broker on 127.0.0.1 for
// the simulators' tests. It authenticates against a config.Registry, lets a
// device publish only under its own id, and records what was published.
package testbroker

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/urbanwatch/urbanwatch/config"
)

// Message is one publish the broker accepted.
type Message struct {
	ClientID, Username, Topic string
	QoS                       byte
	Payload                   []byte
}

// Broker is a running test broker.
type Broker struct {
	// Addr is the TCP address it listens on, "127.0.0.1:port".
	Addr string

	srv    *mqtt.Server
	mu     sync.Mutex
	msgs   []Message
	refuse int
	notify chan struct{} // closed and replaced on every message

	countOnly bool
	counts    map[string]int64 // by last topic segment
}

// Counts returns how many messages arrived per last topic segment ("gps",
// "sensors", "rain", "depth").
func (b *Broker) Counts() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.counts))
	for k, v := range b.counts {
		out[k] = v
	}
	return out
}

// Start runs a broker until the test ends. With a registry, clients must log
// in as a registered device with its secret and client id = username, and
// may publish only to topics whose second segment is their id; with nil,
// anyone may do anything.
func Start(t testing.TB, reg *config.Registry) *Broker {
	t.Helper()
	return start(t, reg, false)
}

// StartCounting is Start for load tests: it keeps no messages, only counts
// them by topic suffix (Counts).
func StartCounting(t testing.TB, reg *config.Registry) *Broker {
	t.Helper()
	return start(t, reg, true)
}

func start(t testing.TB, reg *config.Registry, countOnly bool) *Broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := &Broker{srv: srv, notify: make(chan struct{}), countOnly: countOnly, counts: map[string]int64{}}
	var err error
	if reg == nil {
		err = srv.AddHook(new(auth.AllowHook), nil)
	} else {
		err = srv.AddHook(&registryHook{b: b, reg: reg}, nil)
	}
	if err == nil {
		err = srv.AddHook(&recordHook{b: b}, nil)
	}
	if err != nil {
		t.Fatalf("testbroker: add hook: %v", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatalf("testbroker: listen: %v", err)
	}
	b.Addr = tcp.Address()
	if err := srv.Serve(); err != nil {
		t.Fatalf("testbroker: serve: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// Messages returns a copy of everything published so far.
func (b *Broker) Messages() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

// Refused returns how many logins the registry hook refused.
func (b *Broker) Refused() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refuse
}

// WaitFor blocks until cond holds for the messages so far, re-checking on
// every new message; it fails the test after timeout.
func (b *Broker) WaitFor(t testing.TB, timeout time.Duration, cond func([]Message) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b.msgs)
		ch := b.notify
		n := len(b.msgs)
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("testbroker: condition not met after %v (%d messages)", timeout, n)
		}
	}
}

func (b *Broker) add(m Message) {
	b.mu.Lock()
	b.counts[m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]]++
	if b.countOnly {
		b.mu.Unlock()
		return
	}
	b.msgs = append(b.msgs, m)
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
}

// registryHook authenticates devices against the registry.
type registryHook struct {
	mqtt.HookBase
	b   *Broker
	reg *config.Registry
}

func (h *registryHook) ID() string { return "registry-auth" }

func (h *registryHook) Provides(x byte) bool {
	return x == mqtt.OnConnectAuthenticate || x == mqtt.OnACLCheck
}

func (h *registryHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	_, ok := h.reg.Authenticate(user, string(pk.Connect.Password))
	ok = ok && pk.Connect.ClientIdentifier == user
	if !ok {
		h.b.mu.Lock()
		h.b.refuse++
		h.b.mu.Unlock()
	}
	return ok
}

func (h *registryHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	parts := strings.Split(topic, "/")
	return !write || len(parts) == 3 && parts[1] == string(cl.Properties.Username)
}

// recordHook records accepted publishes.
type recordHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *recordHook) ID() string { return "record" }

func (h *recordHook) Provides(x byte) bool { return x == mqtt.OnPublished }

func (h *recordHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	m := Message{ClientID: cl.ID, Username: string(cl.Properties.Username), Topic: pk.TopicName, QoS: pk.FixedHeader.Qos}
	if !h.b.countOnly {
		m.Payload = bytes.Clone(pk.Payload)
	}
	h.b.add(m)
}
