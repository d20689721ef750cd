package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/urbanwatch/urbanwatch/app"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file")
	mqttURL := fs.String("mqtt-url", "", "ingest from this external broker (tcp://host:1883) instead of the embedded one")
	mqttListen := fs.String("mqtt-listen", "", "embedded broker TCP address (overrides mqtt.listen)")
	influxURL := fs.String("influx-url", "", "InfluxDB URL (overrides influx.url; empty runs a managed one)")
	httpListen := fs.String("http", "", "address for /metrics, /healthz, /readyz (overrides http.listen)")
	jt808Listen := fs.String("jt808-listen", "", "JT/T 808 gateway TCP address (overrides jt808.listen)")
	dataDir := fs.String("data-dir", "", "spool, dead letters and managed InfluxDB (overrides data_dir)")
	demo := fs.Bool("demo", false, "also run the simulator against the embedded broker")
	demoTrucks := fs.Int("demo-trucks", 200, "with -demo: simulated trucks")
	demoRain := fs.Int("demo-rain-gauges", 200, "with -demo: simulated rain gauges")
	demoDepth := fs.Int("demo-depth-points", 100, "with -demo: simulated water-depth points")
	demoStorm := fs.Bool("demo-storm", true, "with -demo: a rainstorm crosses the city")
	demoSeed := fs.Int64("demo-seed", simulators.DemoSeed, "with -demo: the simulation's seed (the demo city's permits are drawn for this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, reg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cfg.MQTT.External.URL, *mqttURL},
		{&cfg.MQTT.Listen, *mqttListen}, {&cfg.Influx.URL, *influxURL}, {&cfg.HTTP.Listen, *httpListen},
		{&cfg.DataDir, *dataDir}, {&cfg.JT808.Listen, *jt808Listen}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	var city *config.City
	if cfg.City != "" {
		if city, err = config.LoadCity(cfg.City, reg); err != nil {
			return err
		}
	} else {
		log.Warn().Msg("no city configured: ingest and storage only, no rules")
	}
	var settings *config.Alerting
	if cfg.Alerting != "" && city != nil {
		if settings, err = config.LoadAlerting(cfg.Alerting, city); err != nil {
			return err
		}
	}
	if !cfg.Cluster.Enabled() {
		// A node of a cluster has no spool on its ingest path: NATS
		// holds the records, and the spare P would only take CPU from
		// the NATS servers a small cluster shares its machines with.
		defer app.SpareFsyncProc()()
	}
	started := make(chan *app.App, 1)
	a, err := app.New(app.Options{Config: cfg, Registry: reg, City: city, Alerting: settings, Logger: log,
		Ready: func(a *app.App) { started <- a }})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(gctx) })
	if city != nil {
		reload := func(why string) {
			if err := a.ReloadCity(); err != nil {
				log.Error().Str("trigger", why).Msgf("city configuration refused, the previous one stays:\n%v", err)
				return
			}
			log.Info().Str("trigger", why).Str("file", cfg.City).Msg("city configuration reloaded")
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		g.Go(func() error {
			defer signal.Stop(hup)
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-hup:
					reload("SIGHUP")
				}
			}
		})
		w := config.NewCityWatcher(city, 2*time.Second, func() { reload("file change") })
		g.Go(func() error { return w.Run(gctx) })
	}
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-started:
		}
		printBanner(stdout, a, cfg, *demo, *demoTrucks, *demoRain, *demoDepth)
		if !*demo {
			return nil
		}
		if a.Broker() == nil {
			return fmt.Errorf("-demo needs the embedded broker")
		}
		err := simulators.Run(gctx, simulators.Options{
			Broker: "tcp://" + a.MQTTAddr(), Registry: reg,
			Trucks: *demoTrucks, RainGauges: *demoRain, DepthPoints: *demoDepth,
			Storm: *demoStorm, Seed: *demoSeed,
			Logger: log.With().Str("component", "sim").Logger().Level(max(log.GetLevel(), zerolog.WarnLevel)),
		})
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	return g.Wait()
}

func printBanner(w io.Writer, a *app.App, cfg *config.Config, demo bool, trucks, rain, depth int) {
	host, port, _ := net.SplitHostPort(a.MQTTAddr())
	mqtt := "tcp://" + a.MQTTAddr() + "   (embedded broker; devices log in with their id and secret)"
	if a.Broker() == nil {
		mqtt = a.MQTTAddr() + "   (external broker)"
	}
	fmt.Fprintf(w, `
urbanwatch is running. Ctrl-C stops it.
  MQTT          %s
  metrics       http://%s/metrics
  readiness     http://%s/readyz
  InfluxDB      %s   database %q
  dead letters  %s
`, mqtt, a.HTTPAddr(), a.HTTPAddr(), a.InfluxURL(), cfg.Influx.Database, a.DeadLetterPath())
	if a.JT808Addr() != "" {
		fmt.Fprintf(w, "  JT/T 808      %s   (terminals log in by phone number and auth code; docs/jt808.md)\n", a.JT808Addr())
	}
	if demo {
		fmt.Fprintf(w, "  simulation    %d trucks, %d rain gauges, %d depth points around Weifang\n", trucks, rain, depth)
	}
	if a.Console() != nil {
		fmt.Fprintf(w, "  console       http://%s/   (users in %s)\n", a.HTTPAddr(), cfg.Console.Users)
		if demo {
			fmt.Fprint(w, `                demo sign-ins (deploy/demo/users.yaml):
                  admin     / weifang-admin-demo   everything
                  inspector / weifang-night-demo   night inspection: live map, truck alerts, evidence, reports
                  duty      / weifang-flood-demo   flood duty: gauges, depth points, CAP warnings
                  c01       / weifang-c01-demo     compliance manager of C01 潍坊鸢都运输 (its own trucks only)
                  c02       / weifang-c02-demo     compliance manager of C02 潍坊白浪河运输
`)
		}
	}
	fmt.Fprintf(w, `
Look at what arrives:
  curl -s http://%s/metrics | grep -E '^urbanwatch_(ingest|influx|spool|rules)_'
  curl -sG %s/query --data-urlencode db=%s --data-urlencode 'q=SELECT count(lat) FROM truck_gps'
Watch the alerts as a duty console does (demo registry's operator account):
  mosquitto_sub -h %s -p %s -u WF-CONSOLE -i WF-CONSOLE -P weifang-duty-console-secret -t 'urbanwatch/alerts/#' -v
Alerts, their history and notifications, and the CAP weather and flood warnings:
  curl -s 'http://%s/api/alerts?state=firing&limit=10'
  curl -s http://%s/cap/feed.xml

`, a.HTTPAddr(), a.InfluxURL(), cfg.Influx.Database, host, port, a.HTTPAddr(), a.HTTPAddr())
}
