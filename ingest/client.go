package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DeviceTopics are the subscriptions that receive every device message.
var DeviceTopics = []string{"trucks/+/gps", "trucks/+/sensors", "gauges/+/rain", "gauges/+/depth"}

// ClientOptions configures ingest from an external broker.
type ClientOptions struct {
	URL      string // tcp://host:1883, ssl://host:8883 or ws://...
	ClientID string // fixed, so the broker keeps the session; default "urbanwatch-ingest"
	Username string
	Password string
	// MaxInflight bounds messages received but not yet durable and
	// acknowledged. When it is reached, reading from the broker pauses and
	// the broker holds the rest in the session. Default 1,000.
	MaxInflight int
	Topics      []string // default DeviceTopics
	Logger      zerolog.Logger
	Registerer  prometheus.Registerer
}

// Client ingests from an external MQTT broker (Mosquitto, EMQX) with a
// persistent session at QoS 1. Automatic acknowledgement is off: each message
// is acknowledged only after its record is durable, in the order received, so
// a crash at any point leaves unacknowledged messages in the broker's session
// to be redelivered. The external broker is trusted to have authenticated the
// device and to allow it only its own topics (deploy/mosquitto has the ACL);
// the {device} of the topic is taken as the identity.
type Client struct {
	in       *Ingester
	o        ClientOptions
	inflight prometheus.Gauge
	notAcked prometheus.Counter
}

// NewClient returns a client that hands what it receives to in.
func NewClient(in *Ingester, o ClientOptions) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("ingest client: URL is required")
	}
	if o.ClientID == "" {
		o.ClientID = "urbanwatch-ingest"
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 1000
	}
	if len(o.Topics) == 0 {
		o.Topics = DeviceTopics
	}
	c := &Client{in: in, o: o,
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "urbanwatch_ingest_client_inflight",
			Help: "Messages from the external broker received but not yet acknowledged."}),
		notAcked: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_ingest_client_unacked_total",
			Help: "Messages left unacknowledged because the spool refused them; the broker redelivers them."}),
	}
	if o.Registerer != nil {
		if err := registerAll(o.Registerer, c.inflight, c.notAcked); err != nil {
			return nil, err
		}
	}
	return c, nil
}

type ackItem struct {
	p   *Pending
	msg paho.Message
}

// Run connects, subscribes and ingests until ctx is done. Connection losses
// are retried forever; Run returns nil when ctx is cancelled.
func (c *Client) Run(ctx context.Context) error {
	acks := make(chan ackItem, c.o.MaxInflight)
	redo := make(chan struct{}, 1) // the spool refused a message: reconnect for redelivery
	stop := make(chan struct{})
	log := c.o.Logger
	handler := func(_ paho.Client, msg paho.Message) {
		p := c.in.Begin("", msg.Topic(), msg.Payload())
		c.inflight.Inc()
		select {
		case acks <- ackItem{p: p, msg: msg}: // blocks at MaxInflight: paho stops reading
		case <-stop: // shutting down: left unacknowledged, the broker redelivers
			p.Wait()
			c.inflight.Dec()
		}
	}
	opts := paho.NewClientOptions().AddBroker(c.o.URL).SetClientID(c.o.ClientID).
		SetUsername(c.o.Username).SetPassword(c.o.Password).
		SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30 * time.Second).SetKeepAlive(30 * time.Second).
		// Messages redelivered from the persistent session can arrive
		// before the subscription is registered again; route them too.
		SetDefaultPublishHandler(handler).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn().Err(err).Str("broker", c.o.URL).Msg("connection to external broker lost; reconnecting")
		}).
		SetOnConnectHandler(func(pc paho.Client) {
			filters := make(map[string]byte, len(c.o.Topics))
			for _, t := range c.o.Topics {
				filters[t] = 1
			}
			tok := pc.SubscribeMultiple(filters, handler)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				log.Error().Err(tok.Error()).Msg("subscribe on external broker failed; reconnecting")
				select {
				case redo <- struct{}{}:
				default:
				}
				return
			}
			log.Info().Str("broker", c.o.URL).Strs("topics", c.o.Topics).Msg("ingesting from external broker")
		})

	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var it ackItem
			select {
			case it = <-acks:
			case <-stop:
				return
			}
			out := it.p.Wait()
			c.inflight.Dec()
			if out.Status == Unavailable {
				// Leave it unacknowledged and reconnect, so the broker
				// redelivers it from the session.
				c.notAcked.Inc()
				select {
				case redo <- struct{}{}:
				default:
				}
				continue
			}
			it.msg.Ack()
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	for {
		cli := paho.NewClient(opts)
		tok := cli.Connect() // with ConnectRetry, completes once connected or on a permanent error
		select {
		case <-ctx.Done():
			cli.Disconnect(250)
			return nil
		case <-tok.Done():
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("connect %s: %w", c.o.URL, err)
		}
		select {
		case <-ctx.Done():
			cli.Disconnect(250)
			return nil
		case <-redo:
			cli.Disconnect(250)
			log.Warn().Msg("spool refused messages; reconnecting to the external broker for redelivery in 1s")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}
