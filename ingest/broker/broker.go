// Package broker runs the embedded MQTT broker (mochi-mqtt, MQTT 3.1.1 and 5,
// TCP and optionally TLS) that devices connect to, with one hook that does
// what urbanwatch needs of a broker:
//
//   - authentication: a device logs in with its id and secret, or presents a
//     TLS client certificate whose CN the registry knows;
//   - authorisation: a device may publish only on its own topics and
//     subscribe only under its own prefix; anything else is refused, counted
//     and kept in the dead letters;
//   - durability: each message is handed to ingest inline, in the
//     connection's own goroutine, and its PUBACK reaches the device only
//     after ingest reports the record durable (see gatedConn). There is no
//     TCP hop between broker and ingest, so nothing can be dropped in
//     between.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Devices authenticates devices. Implemented by the registry.
type Devices interface {
	// AuthenticatePassword reports whether secret is device id's secret.
	AuthenticatePassword(id, secret string) bool
	// IdentifyCN returns the device whose client certificate has common
	// name cn.
	IdentifyCN(cn string) (id string, ok bool)
	// Class returns a registered device's class.
	Class(id string) (telemetry.Class, bool)
}

// Ingest receives the messages devices publish. Implemented by
// *ingest.Ingester.
type Ingest interface {
	Begin(identity, topic string, payload []byte) *ingest.Pending
	Reject(identity, topic string, payload []byte, reason ingest.Reason, detail string)
}

// Options configures the broker.
type Options struct {
	TCPAddr string // plain MQTT listener, e.g. "127.0.0.1:1883"; "" for none
	// TLSAddr, with TLSCertFile and TLSKeyFile, adds an MQTT-over-TLS
	// listener. With ClientCAFile, client certificates signed by that CA are
	// verified when presented and identify the device by CN.
	TLSAddr, TLSCertFile, TLSKeyFile, ClientCAFile string
	Devices                                        Devices
	Ingest                                         Ingest
	// MaxPacketBytes bounds an MQTT packet; larger ones close the
	// connection. Payloads under it but over ingest's limit are rejected
	// with a reason instead. Default 64 KiB.
	MaxPacketBytes int
	Logger         zerolog.Logger
	Registerer     prometheus.Registerer
}

// Broker is the embedded MQTT broker.
type Broker struct {
	o         Options
	srv       *mqtt.Server
	tcp       *listeners.TCP
	tls       *listeners.TCP
	started   bool
	closeOnce sync.Once

	authFailures prometheus.Counter
	aclDenied    *prometheus.CounterVec
	notAcked     prometheus.Counter
	stalled      prometheus.Counter
	alertDrops   atomic.Int64
}

// New builds a broker; Start or Run opens its listeners.
func New(o Options) (*Broker, error) {
	if o.Devices == nil || o.Ingest == nil {
		return nil, errors.New("broker: Devices and Ingest are required")
	}
	if o.MaxPacketBytes <= 0 {
		o.MaxPacketBytes = 64 << 10
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(o.MaxPacketBytes)
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60
	// Each client gets a channel of this many pending outbound publishes,
	// 8 bytes a slot: mochi's default of 8,192 costs 64 KiB per device.
	// Devices receive almost nothing (PUBACKs bypass this queue), so a small
	// queue is plenty and 20,000 trucks fit in a few hundred MiB.
	caps.MaximumClientWritesPending = 256
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		InlineClient: true, // urbanwatch publishes alerts through the broker itself
		// mochi logs every client EOF at warn; only its errors are worth a line.
		Logger: slog.New(zerolog.NewSlogHandler(o.Logger.Level(max(o.Logger.GetLevel(), zerolog.ErrorLevel)))),
	})
	b := &Broker{o: o, srv: srv,
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_broker_auth_failures_total",
			Help: "Connections refused for bad credentials or an unknown certificate."}),
		aclDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_broker_acl_denied_total",
			Help: "Publishes and subscriptions refused by the per-device ACL."}, []string{"op"}),
		notAcked: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_broker_unacked_disconnects_total",
			Help: "Connections closed without a PUBACK because the spool refused the message; the device resends."}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_broker_stalled_disconnects_total",
			Help: "Connections closed for holding 65,536 unsent acknowledgements: the device publishes without reading."}),
	}
	b.aclDenied.WithLabelValues("publish")
	b.aclDenied.WithLabelValues("subscribe")
	info := srv.Info
	collectors := []prometheus.Collector{b.authFailures, b.aclDenied, b.notAcked, b.stalled,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "urbanwatch_broker_connected_devices",
			Help: "MQTT clients connected to the embedded broker."},
			func() float64 { return float64(info.Clone().ClientsConnected) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "urbanwatch_broker_messages_dropped_total",
			Help: "Messages the broker dropped on the way to slow MQTT subscribers (never ingest's own path)."},
			func() float64 { return float64(info.Clone().MessagesDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "urbanwatch_broker_inflight_dropped_total",
			Help: "QoS messages to subscribers the broker dropped from its inflight store."},
			func() float64 { return float64(info.Clone().InflightDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "urbanwatch_broker_messages_received_total",
			Help: "PUBLISH packets received by the broker."},
			func() float64 { return float64(info.Clone().MessagesReceived) }),
	}
	if o.Registerer != nil {
		for _, c := range collectors {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("broker metrics: %w", err)
			}
		}
	}
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("broker hook: %w", err)
	}
	if o.TCPAddr != "" {
		b.tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: o.TCPAddr})
		if err := srv.AddListener(gatedTCP{b.tcp, b.notAcked, b.closeClients, newAckers(runtime.GOMAXPROCS(0), b.stalled)}); err != nil {
			return nil, fmt.Errorf("mqtt listener %s: %w", o.TCPAddr, err)
		}
	}
	if o.TLSAddr != "" {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		b.tls = listeners.NewTCP(listeners.Config{ID: "tls", Address: o.TLSAddr, TLSConfig: cfg})
		if err := srv.AddListener(gatedTCP{b.tls, b.notAcked, b.closeClients, newAckers(runtime.GOMAXPROCS(0), b.stalled)}); err != nil {
			return nil, fmt.Errorf("mqtt tls listener %s: %w", o.TLSAddr, err)
		}
	}
	if b.tcp == nil && b.tls == nil {
		return nil, errors.New("broker: no listener configured")
	}
	return b, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	if o.TLSCertFile == "" || o.TLSKeyFile == "" {
		return nil, errors.New("broker: tls listener needs a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("broker: load tls key pair: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("broker: read client ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker: client ca %s: no PEM certificates", o.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// Start opens the listeners and begins accepting connections.
func (b *Broker) Start() error {
	if b.started {
		return nil
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("start mqtt broker: %w", err)
	}
	b.started = true
	return nil
}

// Run starts the broker if needed and serves until ctx is done, then closes
// every connection.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

// Close stops the listeners and disconnects every client. Calls after the
// first do nothing.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		if e := b.srv.Close(); e != nil {
			err = fmt.Errorf("close mqtt broker: %w", e)
		}
	})
	return err
}

// closeClients disconnects every client of one listener, taking mochi's
// client map lock once (see gatedTCP.closeClients).
func (b *Broker) closeClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// Addr returns the plain listener's bound address ("" if none).
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// TLSAddr returns the TLS listener's bound address ("" if none).
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Address()
}

// AlertDrops counts alert messages the broker dropped for a subscriber
// whose outbound queue was full. Publish of an alert is complete only if the
// count did not move during it; the alert publisher republishes otherwise.
func (b *Broker) AlertDrops() int64 { return b.alertDrops.Load() }

// Publish sends a message from urbanwatch itself (alerts) to subscribers.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.srv.Publish(topic, payload, retain, qos)
}

// OnPublishDropped counts alerts dropped for a slow subscriber.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	if strings.HasPrefix(pk.TopicName, AlertTopicPrefix) || strings.HasPrefix(pk.TopicName, CAPTopicPrefix) {
		h.b.alertDrops.Add(1)
		h.b.o.Logger.Warn().Str("client", cl.ID).Str("topic", pk.TopicName).
			Msg("alert dropped for a subscriber that is behind; it will be published again")
	}
}

// hook is the mochi hook with urbanwatch's device rules.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "urbanwatch-devices" }

func (h *hook) Provides(x byte) bool {
	switch x {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPublishDropped:
		return true
	}
	return false
}

// OnConnectAuthenticate admits a device by client certificate or by id and
// secret. On success the client's Username is the device id, which every
// later check uses as its identity.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	conn := cl.Net.Conn
	if g, ok := conn.(*gatedConn); ok {
		conn = g.underlying()
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
			cn := st.PeerCertificates[0].Subject.CommonName
			id, ok := h.b.o.Devices.IdentifyCN(cn)
			if !ok || (user != "" && user != id) {
				h.denyConnect(cl, "certificate CN "+cn+" is not a registered device or does not match the username")
				return false
			}
			cl.Properties.Username = []byte(id)
			return h.ownClientID(cl, id)
		}
	}
	if user == "" || !h.b.o.Devices.AuthenticatePassword(user, string(pk.Connect.Password)) {
		h.denyConnect(cl, "bad device id or secret for "+user)
		return false
	}
	return h.ownClientID(cl, user)
}

// ownClientID requires the MQTT client id to be the device id: a session is
// keyed by client id, and a device using another's would take over its
// session.
func (h *hook) ownClientID(cl *mqtt.Client, id string) bool {
	if cl.ID == id {
		return true
	}
	h.denyConnect(cl, "client id "+cl.ID+" is not the device id "+id)
	return false
}

func (h *hook) denyConnect(cl *mqtt.Client, why string) {
	h.b.authFailures.Inc()
	h.b.o.Logger.Warn().Str("remote", cl.Net.Remote).Str("client", cl.ID).Msg("connection refused: " + why)
}

// AlertTopicPrefix starts the topics alerts are published on
// (urbanwatch/alerts/{rule}/{subject}); AlertTopicFilter subscribes to all.
// CAPTopicPrefix starts the topics of CAP warnings
// (urbanwatch/cap/{rule}/{subject}, retained); CAPTopicFilter subscribes to
// all.
const (
	AlertTopicPrefix = "urbanwatch/alerts/"
	AlertTopicFilter = "urbanwatch/alerts/#"
	CAPTopicPrefix   = "urbanwatch/cap/"
	CAPTopicFilter   = "urbanwatch/cap/#"
)

// OnACLCheck lets a device subscribe only under its own prefix, and an
// operator only to alerts and CAP warnings. Publishes
// pass here and are checked in OnPublish, which has the payload to keep in
// the dead letters and can acknowledge the refusal: mochi's ACL refusal of a
// QoS 1 publish from an MQTT 3.1.1 device closes the connection, and the
// device would resend the same message forever.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	id := string(cl.Properties.Username)
	class, ok := h.b.o.Devices.Class(id)
	if ok && strings.HasPrefix(topic, string(class)+"/"+id+"/") {
		return true
	}
	if ok && class == telemetry.ClassOperator && (topic == AlertTopicFilter || strings.HasPrefix(topic, AlertTopicPrefix) ||
		topic == CAPTopicFilter || strings.HasPrefix(topic, CAPTopicPrefix)) {
		return true
	}
	h.b.aclDenied.WithLabelValues("subscribe").Inc()
	h.b.o.Logger.Warn().Str("device", id).Str("filter", topic).Msg("subscription refused by ACL")
	return false
}

// OnPublish hands the message to ingest and decides the acknowledgement.
//
// On our own listeners a QoS 1 message does not block its connection: the
// gatedConn sends its PUBACK once the record is durable, so the reader goes on
// to the next packet and many messages of one connection share a group
// commit. Elsewhere (QoS 0 and 2, or a listener we
// did not wrap) the hook blocks until the record is durable, which holds the
// acknowledgement back just the same.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	p := h.b.o.Ingest.Begin(string(cl.Properties.Username), pk.TopicName, pk.Payload)
	if _, decided := p.Immediate(); !decided && pk.FixedHeader.Qos == 1 {
		if g, ok := cl.Net.Conn.(*gatedConn); ok {
			// The connection sends the PUBACK after the commit. mochi
			// must neither acknowledge it early nor keep an
			// acknowledgement in the session to resend, nor forward
			// it: a QoS 0 packet marked Ignore is exactly that.
			// (ErrRejectPacket does the same, but mochi then boxes the
			// whole packet for a debug log line on every message.)
			g.ack(pk.PacketID, p)
			pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.Ignore = 0, false, true
			return pk, nil
		}
	}
	out := p.Wait()
	switch out.Status {
	case ingest.Accepted:
		return pk, nil
	case ingest.Duplicate:
		return pk, packets.CodeSuccessIgnore // acknowledge, don't forward again
	case ingest.Rejected:
		if out.Reason == ingest.ReasonIdentityMismatch || out.Reason == ingest.ReasonUnknownTopic {
			h.b.aclDenied.WithLabelValues("publish").Inc()
		}
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos == 1 {
			// MQTT 5 can tell the device why in the PUBACK.
			switch out.Reason {
			case ingest.ReasonIdentityMismatch, ingest.ReasonUnknownDevice:
				return pk, packets.ErrNotAuthorized
			case ingest.ReasonUnknownTopic:
				return pk, packets.ErrTopicNameInvalid
			}
			return pk, packets.ErrPayloadFormatInvalid
		}
		// MQTT 3.1.1 has no negative PUBACK: acknowledge so the device
		// does not resend forever; the message is in the dead letters.
		return pk, packets.CodeSuccessIgnore
	}
	// Unavailable: no PUBACK. Close the connection so the device resends the
	// message from its session when it reconnects.
	h.b.notAcked.Inc()
	cl.Stop(packets.ErrServerBusy)
	return pk, packets.ErrRejectPacket
}
