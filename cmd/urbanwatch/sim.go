package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators"
)

func sim(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file (for the device registry)")
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker to publish to")
	protocol := fs.String("protocol", "mqtt", "how trucks talk: mqtt, or jt808 (JT/T 808 terminals; gauges stay on MQTT)")
	jt808Addr := fs.String("jt808", "127.0.0.1:7611", "with -protocol jt808: the JT/T 808 gateway (host:port)")
	trucks := fs.Int("trucks", 200, "simulated muck trucks (up to the registry's truck fleet)")
	rain := fs.Int("rain-gauges", 20, "simulated rain gauges")
	depth := fs.Int("depth-points", 10, "simulated water-depth points")
	interval := fs.Duration("interval", time.Second, "GPS fix interval per truck")
	gauge := fs.Duration("gauge-interval", time.Minute, "report interval per gauge")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	storm := fs.Bool("storm", false, "a rainstorm crosses the city")
	seed := fs.Int64("seed", 1, "random seed (same seed, same traffic)")
	connectRate := fs.Int("connect-rate", 500, "new device connections per second")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *protocol != "mqtt" && *protocol != "jt808" {
		return fmt.Errorf("sim: -protocol %q: want mqtt or jt808", *protocol)
	}
	if *protocol == "mqtt" {
		*jt808Addr = ""
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	reg, err := config.LoadRegistry(cfg.Registry)
	if err != nil {
		return err
	}
	return simulators.Run(ctx, simulators.Options{
		Broker: *broker, JT808: *jt808Addr, Registry: reg, Trucks: *trucks, RainGauges: *rain, DepthPoints: *depth,
		FixInterval: *interval, GaugeInterval: *gauge, Duration: *duration, Storm: *storm, Seed: *seed,
		ConnectRate: *connectRate, Logger: newLogger(stderr, *logLevel, "console"),
	})
}
