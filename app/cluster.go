package app

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// In cluster mode (cluster.nats set; docs/cluster.md) the node's stages
// read and write JetStream instead of the local spool:
//
//	device --MQTT/808--> ingest --R3 ack--> UW_REC --partition leases--> rules workers --> UW_ALERTS
//	UW_REC --durable "influx"--> InfluxDB writer --> InfluxDB
//	UW_ALERTS --durable "alerting" (alerting node)--> local alert journal --> alerting, trips, MQTT alerts, console
//	UW_REC --tail (alerting node)--> console live map
//
// The alerting node keeps the alert journal it always kept, filled from
// UW_ALERTS instead of its own rules, so everything downstream of the
// journal is unchanged.

// clusterNode is this process's part in the cluster.
type clusterNode struct {
	cfg      config.Cluster
	log      zerolog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	records  *cluster.Log
	out      *cluster.Output
	rules    *cluster.Rules    // nil without the rules role or a city
	assigner *cluster.Assigner // nil without the rules role or a city
	store    *cluster.Durable  // nil without the store role
	alerts   *cluster.Durable  // nil unless this is the alerting node
	bridged  prometheus.Counter
}

// openCluster connects to NATS and opens the streams, buckets and
// consumers this node's roles need.
func openCluster(cfg *config.Config, city *config.City, log zerolog.Logger, reg prometheus.Registerer, now func() time.Time) (*clusterNode, error) {
	cc := cfg.Cluster
	if cc.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster.node unset and no host name: %w", err)
		}
		cc.Node = h
	}
	n := &clusterNode{cfg: cc, log: log,
		bridged: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_cluster_alerts_bridged_total",
			Help: "Alert events and trips copied from UW_ALERTS into this node's alert journal."})}
	if err := reg.Register(n.bridged); err != nil {
		return nil, fmt.Errorf("cluster metrics: %w", err)
	}
	var err error
	n.nc, err = connectNATS(cc, log)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.nc.Close()
		}
	}()
	// A publish whose ack was lost with a stream leader must fail (and be
	// retried), not hold its slot among the pending acks forever.
	if n.js, err = jetstream.New(n.nc, jetstream.WithPublishAsyncTimeout(5*time.Second)); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n.records, err = cluster.OpenLog(ctx, n.js, cluster.LogOptions{Partitions: cc.Partitions, Replicas: cc.Replicas,
		MaxAge: cc.Retention, Key: cluster.CityKeys(city)}); err != nil {
		return nil, err
	}
	if n.out, err = cluster.OpenOutput(ctx, n.js, cluster.OutputOptions{Replicas: cc.Replicas, MaxAge: cc.Retention}); err != nil {
		return nil, err
	}
	if cc.Has("store") {
		if n.store, err = cluster.OpenDurable(ctx, n.js, cluster.DurableOptions{Stream: n.records.Stream(), Name: "influx",
			AckWait: cc.AckWait}); err != nil {
			return nil, err
		}
	}
	if city != nil && cc.Has("rules") {
		states, err := cluster.OpenStates(ctx, n.js, "", cc.Replicas)
		if err != nil {
			return nil, err
		}
		leases, err := cluster.OpenLeases(ctx, n.js, cluster.LeaseOptions{TTL: cc.LeaseTTL, Replicas: cc.Replicas})
		if err != nil {
			return nil, err
		}
		rlog := log.With().Str("component", "rules").Logger()
		if n.rules, err = cluster.NewRules(cluster.RulesOptions{Log: n.records, States: states, Output: n.out, City: city,
			Now: now, CheckpointEvery: cc.CheckpointEvery, Logger: rlog, Registerer: reg}); err != nil {
			return nil, err
		}
		n.assigner = cluster.NewAssigner(cluster.AssignerOptions{ID: cc.Node, Partitions: cc.Partitions, Leases: leases,
			Run: n.rules.Run, Logger: rlog})
	}
	if city != nil && cc.Alerting {
		if n.alerts, err = cluster.OpenDurable(ctx, n.js, cluster.DurableOptions{Stream: n.out.Stream(), Name: "alerting",
			AckWait: cc.AckWait}); err != nil {
			return nil, err
		}
	}
	ok = true
	return n, nil
}

// bridge copies UW_ALERTS into the local alert journal, acking each batch
// once the journal has it on disk; a batch delivered again after a crash
// is journaled twice, which every journal reader tolerates (alerting by id
// and version, trips by id, MQTT subscribers by id and version).
func (n *clusterNode) bridge(ctx context.Context, journal *spool.Spool) error {
	for {
		msgs, err := n.alerts.Fetch(ctx, 256)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cluster alerts: %w", err)
		}
		// Every record's commit is checked: the journal refuses one record
		// (full, too large) with a commit of its own while later ones may
		// succeed, and nothing is acked unless all of the batch is on disk.
		commits := make([]*spool.Commit, 0, len(msgs))
		for _, m := range msgs {
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("cluster alerts metadata: %w", err)
			}
			rec := make([]byte, 8, 8+len(m.Data()))
			binary.BigEndian.PutUint64(rec, md.Sequence.Stream)
			commits = append(commits, journal.Submit(append(rec, m.Data()...)))
		}
		for _, c := range commits {
			if err := c.Wait(); err != nil {
				return fmt.Errorf("alert journal: %w", err)
			}
		}
		cluster.AckAll(msgs)
		n.bridged.Add(float64(len(msgs)))
	}
}

// follow feeds every new record of the stream to observe, in stream order
// (the alerting node's console map; it needs no durability: a restart
// starts from the newest records, and the map fills as trucks report).
func (n *clusterNode) follow(ctx context.Context, observe func(*telemetry.Record)) error {
	for ctx.Err() == nil {
		var it jetstream.MessagesContext
		cons, err := n.js.OrderedConsumer(ctx, n.records.Stream(), jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverNewPolicy})
		if err == nil {
			it, err = cons.Messages(jetstream.PullHeartbeat(time.Second))
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		stop := context.AfterFunc(ctx, it.Stop)
		var rec telemetry.Record
		for {
			m, err := it.Next()
			if err != nil {
				break
			}
			rec = telemetry.Record{}
			if rec.UnmarshalBinary(m.Data()) == nil {
				observe(&rec)
			}
		}
		stop()
		it.Stop()
	}
	return nil
}

func (n *clusterNode) close() {
	if n != nil && n.nc != nil {
		if err := n.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.nc.Close()
		}
	}
}

// connectNATS connects to cc's NATS servers, logging in and verifying TLS as
// cc says. It does not wait for a server to answer: the connection keeps
// trying (a node may start before NATS) and logs why it cannot connect, a
// refused login or an unverified certificate included.
func connectNATS(cc config.Cluster, log zerolog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("urbanwatch " + cc.Node),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("disconnected from NATS")
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("cannot connect to NATS; trying again")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn().Err(err).Msg("NATS")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info().Str("server", c.ConnectedUrlRedacted()).Msg("reconnected to NATS") })}
	if cc.User != "" {
		opts = append(opts, nats.UserInfo(cc.User, cc.Password))
	}
	if cc.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cc.CredentialsFile))
	}
	if cc.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cc.TLSCAFile))
	}
	if cc.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cc.TLSCertFile, cc.TLSKeyFile))
	}
	nc, err := nats.Connect(strings.Join(cc.NATS, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %v: %w", cc.NATS, err)
	}
	return nc, nil
}
