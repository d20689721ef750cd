// Package app wires urbanwatch's pipeline. It is the one file where the whole
// flow reads top to bottom:
//
//	device --MQTT--> broker (or external client) --> ingest --> spool --> influx writer --> InfluxDB
//
// Sinks start before sources and stop after them: the spool opens first and
// closes last, the broker opens last and closes first, so nothing is accepted
// that has nowhere to go.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/ingest/broker"
	"github.com/urbanwatch/urbanwatch/ingest/jt808"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/web"
)

// Options are what the command line adds to the configuration.
type Options struct {
	Config   *config.Config
	Registry *config.Registry
	// City is the supervision model the rules evaluate; nil runs no rules
	// (ingest and storage only).
	City *config.City
	// Alerting is who is told about alerts and how; nil for
	// config.DefaultAlerting (companies' contacts, SMS to the log).
	Alerting *config.Alerting
	Logger   zerolog.Logger
	// Registry for metrics; nil creates one with Go and process collectors.
	Metrics *prometheus.Registry
	// Ready, when set, is called once every listener is open, with the app
	// (to read its addresses).
	Ready func(*App)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// App is a running urbanwatch.
type App struct {
	o        Options
	cfg      *config.Config
	log      zerolog.Logger
	metrics  *prometheus.Registry
	spool    *spool.Spool
	dead     *ingest.DeadLetters
	ingester *ingest.Ingester
	broker   *broker.Broker
	client   *ingest.Client
	jt808    *jt808.Server // nil unless jt808.listen is set
	writer   *influx.Writer
	managed  *influx.Managed
	http     net.Listener
	influx   string
	ready    atomic.Bool
	journal  *spool.Spool // alert events, in the order the rules raised them
	rules    *rulesStage
	// alerting turns journaled alerts into notifications; nil without a
	// city.
	alerting   *alerting.Manager
	alertStage *alertingStage
	// console is the web console; nil without console.users.
	console *web.Server
	// node is this process's part in a cluster; nil on a single node.
	node *clusterNode
}

// spoolStore adapts the spool to the Store ingest declares.
type spoolStore struct{ s *spool.Spool }

func (s spoolStore) Submit(p []byte) ingest.Waiter { return s.s.Submit(p) }

// New opens the durable parts (spool, dead letters) and builds the rest.
// Nothing listens until Run.
func New(o Options) (a *App, err error) {
	if o.Config == nil || o.Registry == nil {
		return nil, errors.New("app: Config and Registry are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
		o.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	cfg := o.Config
	a = &App{o: o, cfg: cfg, log: o.Logger, metrics: o.Metrics}
	opened := a // a is nil once an error is returned
	defer func() {
		if err != nil {
			opened.closeStores()
		}
	}()
	clustered := cfg.Cluster.Enabled()
	var store ingest.Store
	if clustered {
		// The record stream replaces the spool: ingest acknowledges once
		// JetStream has the record, replicated.
		a.node, err = openCluster(cfg, o.City, o.Logger.With().Str("component", "cluster").Logger(), o.Metrics, o.Now)
		if err != nil {
			return nil, err
		}
		store = a.node.records.Store(0)
	} else {
		a.spool, err = spool.Open(spool.Options{
			Dir:          filepath.Join(cfg.DataDir, "spool"),
			SegmentBytes: int64(cfg.Spool.SegmentBytes),
			MaxBytes:     int64(cfg.Spool.MaxBytes),
			WarnRatio:    cfg.Spool.WarnRatio,
			Logger:       o.Logger.With().Str("component", "spool").Logger(),
			Registerer:   o.Metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		store = spoolStore{a.spool}
	}
	a.dead, err = ingest.OpenDeadLetters(ingest.DeadLetterOptions{
		Dir:        filepath.Join(cfg.DataDir, "deadletters"),
		MaxBytes:   int64(cfg.Ingest.DeadLetterBytes),
		MaxFiles:   cfg.Ingest.DeadLetterFiles,
		Logger:     o.Logger.With().Str("component", "deadletters").Logger(),
		Registerer: o.Metrics,
	})
	if err != nil {
		return nil, err
	}
	a.ingester, err = ingest.New(ingest.Options{
		Devices:     o.Registry,
		Store:       store,
		DeadLetters: a.dead,
		Now:         o.Now,
		MaxPayload:  cfg.Ingest.MaxPayloadBytes,
		MaxFuture:   cfg.Ingest.MaxFuture,
		MaxAge:      cfg.Ingest.MaxAge,
		LateAfter:   cfg.Ingest.LateAfter,
		Logger:      o.Logger.With().Str("component", "ingest").Logger(),
		Registerer:  o.Metrics,
	})
	if err != nil {
		return nil, err
	}
	// Redeliveries of messages stored before a restart must still be
	// recognised: rebuild the dedup window from what the spool retains.
	// (In cluster mode the stream's Nats-Msg-Id window does it.)
	if a.spool != nil {
		seeded := 0
		if err := a.spool.Scan(func(p []byte) error {
			if a.ingester.Seed(p) == nil {
				seeded++
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("seed dedup from spool: %w", err)
		}
		a.log.Info().Int("records", seeded).Msg("dedup window rebuilt from the spool")
	}
	// The alert journal: the rules stage's output on a single node, the
	// copy of UW_ALERTS on the cluster's alerting node.
	if o.City != nil && (!clustered || cfg.Cluster.Alerting) {
		a.journal, err = spool.Open(spool.Options{
			Dir:          filepath.Join(cfg.DataDir, "alerts"),
			SegmentBytes: 8 << 20,
			MaxBytes:     1 << 30,
			Logger:       o.Logger.With().Str("component", "alert-journal").Logger(),
		})
		if err != nil {
			return nil, fmt.Errorf("open alert journal: %w", err)
		}
	}
	if o.City != nil && !clustered {
		a.rules, err = newRulesStage(o.City, a.spool, a.journal, cfg.DataDir, o.Now,
			o.Logger.With().Str("component", "rules").Logger(), o.Metrics)
		if err != nil {
			return nil, err
		}
	}
	if ext := cfg.MQTT.External; ext.URL != "" {
		a.client, err = ingest.NewClient(a.ingester, ingest.ClientOptions{
			URL: ext.URL, ClientID: ext.ClientID, Username: ext.Username, Password: ext.Password,
			MaxInflight: ext.MaxInflight,
			Logger:      o.Logger.With().Str("component", "mqtt-client").Logger(),
			Registerer:  o.Metrics,
		})
	} else {
		a.broker, err = broker.New(broker.Options{
			TCPAddr: cfg.MQTT.Listen, TLSAddr: cfg.MQTT.TLSListen,
			TLSCertFile: cfg.MQTT.TLSCert, TLSKeyFile: cfg.MQTT.TLSKey, ClientCAFile: cfg.MQTT.ClientCA,
			MaxPacketBytes: cfg.MQTT.MaxPacketBytes,
			Devices:        o.Registry,
			Ingest:         a.ingester,
			Logger:         o.Logger.With().Str("component", "broker").Logger(),
			Registerer:     o.Metrics,
		})
	}
	if err != nil {
		return nil, err
	}
	if err = a.newJT808(); err != nil {
		return nil, err
	}
	if a.journal != nil {
		if err = a.newAlerting(o.Alerting); err != nil {
			return nil, err
		}
		if err = a.newConsole(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Run starts InfluxDB (if managed), the writer, the HTTP server and the
// broker or external client, and blocks until ctx is done or a component
// fails. On return everything is stopped and the spool is closed.
func (a *App) Run(ctx context.Context) (err error) {
	defer a.closeStores()
	cfg := a.cfg
	a.influx = cfg.Influx.URL
	if a.influx == "" {
		a.managed, err = influx.StartManaged(ctx, influx.ManagedOptions{
			DataDir:  filepath.Join(cfg.DataDir, "influxdb"),
			Database: cfg.Influx.Database,
			Install:  true,
			Logger:   a.log.With().Str("component", "influxd").Logger(),
		})
		if err != nil {
			return fmt.Errorf("start managed influxdb: %w", err)
		}
		defer a.managed.Stop()
		a.influx = a.managed.URL()
	}
	var src influx.Source
	switch {
	case a.spool != nil:
		if src, err = a.spool.Cursor("influx"); err != nil {
			return fmt.Errorf("spool cursor: %w", err)
		}
	case a.node.store != nil:
		src = a.node.store
	}
	if src != nil {
		a.writer, err = influx.NewWriter(src, influx.Options{
			URL: a.influx, Token: cfg.Influx.Token, Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket(),
			BatchLines: cfg.Influx.BatchLines, Timeout: cfg.Influx.Timeout,
			Logger:     a.log.With().Str("component", "influx").Logger(),
			Registerer: a.metrics,
			// reason is "<code>: <detail>", code undecodable or refused.
			Rejected: func(reason string, rec []byte) {
				code, detail, _ := strings.Cut(reason, ": ")
				a.dead.Put(a.o.Now(), ingest.Reason("influx_"+code), detail, "", "", rec)
			},
		})
		if err != nil {
			return err
		}
	}
	var trips *tripStage
	if a.journal != nil {
		if trips, err = a.newTripStage(); err != nil {
			return err
		}
	}
	a.http, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}

	if a.broker != nil {
		if err := a.broker.Start(); err != nil {
			a.http.Close()
			return err
		}
	}
	if a.jt808 != nil {
		if err := a.jt808.Start(); err != nil {
			a.http.Close()
			return err
		}
	}

	// Sinks first: the writer drains whatever the spool holds already.
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriter()
	writerDone := make(chan error, 1)
	if a.writer != nil {
		go func() { writerDone <- a.writer.Run(writerCtx) }()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(a.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if a.rules != nil {
		g.Go(func() error { return a.rules.Run(gctx) })
	}
	if n := a.node; n != nil {
		if n.assigner != nil {
			g.Go(func() error { return n.assigner.Run(gctx) })
		}
		if n.alerts != nil {
			g.Go(func() error { return n.bridge(gctx, a.journal) })
		}
		if a.console != nil {
			g.Go(func() error { return n.follow(gctx, a.console.Observe) })
		}
	}
	if a.journal != nil {
		g.Go(func() error { return a.alertStage.Run(gctx) })
		g.Go(func() error { return a.alerting.Run(gctx) })
		if a.console != nil {
			g.Go(func() error { return a.console.Run(gctx) })
		}
		g.Go(func() error { return trips.Run(gctx) })
		if a.broker != nil {
			pc, err := a.journal.Cursor(publisherCursor)
			if err != nil {
				return fmt.Errorf("alert journal cursor: %w", err)
			}
			pub := &alertPublisher{cursor: pc, log: a.log.With().Str("component", "alert-publisher").Logger(),
				publish: func(topic string, payload []byte) error {
					before := a.broker.AlertDrops()
					if err := a.broker.Publish(topic, payload, false, 1); err != nil {
						return err
					}
					if a.broker.AlertDrops() != before {
						return errors.New("a subscriber's queue was full")
					}
					return nil
				},
				sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_alerts_published_total",
					Help: "Alert events published on MQTT."})}
			if err := a.metrics.Register(pub.sent); err != nil {
				return fmt.Errorf("alert publisher metrics: %w", err)
			}
			g.Go(func() error { return pub.Run(gctx) })
		}
	}
	if a.broker != nil {
		g.Go(func() error { return a.broker.Run(gctx) })
	} else {
		g.Go(func() error { return a.client.Run(gctx) })
	}
	if a.jt808 != nil {
		g.Go(func() error { return a.jt808.Run(gctx) }) // returns once its pending reports are settled
	}
	g.Go(func() error {
		if a.writer == nil {
			return nil
		}
		select {
		case err := <-writerDone:
			if err != nil {
				return fmt.Errorf("influx writer: %w", err)
			}
			return errors.New("influx writer stopped")
		case <-gctx.Done():
			return nil
		}
	})
	a.ready.Store(true)
	a.log.Info().Str("mqtt", a.MQTTAddr()).Str("http", a.HTTPAddr()).Str("influx", a.influx).
		Str("data_dir", cfg.DataDir).Msg("urbanwatch is running")
	if a.o.Ready != nil {
		a.o.Ready(a)
	}
	err = g.Wait()
	a.ready.Store(false)
	// Sources are stopped; let the writer finish its current batch.
	stopWriter()
	if a.writer != nil {
		select {
		case <-writerDone:
		case <-time.After(10 * time.Second):
			a.log.Warn().Msg("influx writer did not stop in 10s; the spool keeps its records")
		}
	}
	return err
}

// ReloadCity reads the city file (and the alerting file, if any) again
// and, if both are valid, hands them to the rules, which apply the city
// between two messages keeping every subject's state, and to alerting,
// which keeps every alert and decision. A bad file is refused with all its
// errors and the configuration in force stays.
func (a *App) ReloadCity() error {
	if (a.rules == nil && a.node == nil) || a.cfg.City == "" {
		return errors.New("no city configured")
	}
	c, err := config.LoadCity(a.cfg.City, a.o.Registry)
	if err != nil {
		a.rules.refused()
		return err
	}
	var settings *config.Alerting
	if a.cfg.Alerting != "" {
		if settings, err = config.LoadAlerting(a.cfg.Alerting, c); err != nil {
			a.rules.refused()
			return err
		}
	}
	if a.alerting != nil {
		if err := a.alerting.Reload(settings, c); err != nil {
			a.rules.refused()
			return err
		}
	}
	if err := a.reloadUsers(c); err != nil {
		a.rules.refused()
		return err
	}
	if a.rules != nil {
		a.rules.Reload(c)
	}
	if a.node != nil && a.node.rules != nil {
		a.node.rules.SetCity(c)
	}
	if a.console != nil {
		a.console.SetCity(c)
	}
	return nil
}

func (a *App) closeStores() {
	defer func() {
		a.node.close()
		a.node = nil
	}()
	if a.alerting != nil {
		if err := a.alerting.Close(); err != nil {
			a.log.Error().Err(err).Msg("close alert store")
		}
		a.alerting = nil
	}
	if a.dead != nil {
		a.dead.Close()
		a.dead = nil
	}
	if a.journal != nil {
		if err := a.journal.Close(); err != nil {
			a.log.Error().Err(err).Msg("close alert journal")
		}
		a.journal = nil
	}
	if a.spool != nil {
		if err := a.spool.Close(); err != nil {
			a.log.Error().Err(err).Msg("close spool")
		}
		a.spool = nil
	}
}

// MQTTAddr returns the embedded broker's TCP address, or the external
// broker's URL.
func (a *App) MQTTAddr() string {
	if a.broker != nil {
		return a.broker.Addr()
	}
	return a.cfg.MQTT.External.URL
}

// HTTPAddr returns the address /metrics, /healthz and /readyz are served on.
func (a *App) HTTPAddr() string {
	if a.http == nil {
		return ""
	}
	return a.http.Addr().String()
}

// InfluxURL returns the InfluxDB the writer drains to.
func (a *App) InfluxURL() string { return a.influx }

// DeadLetterPath returns the current dead-letter file.
func (a *App) DeadLetterPath() string { return a.dead.Path() }

// Ingester returns the ingest stage (tests feed it directly).
func (a *App) Ingester() *ingest.Ingester { return a.ingester }

// Broker returns the embedded broker, or nil in external mode.
func (a *App) Broker() *broker.Broker { return a.broker }
