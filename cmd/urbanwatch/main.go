// Command urbanwatch supervises muck trucks and watches for floods: it ingests
// device telemetry over MQTT, keeps it durably and stores it in InfluxDB.
//
//	urbanwatch serve  [-config FILE] [flags]   run the service
//	urbanwatch sim    [-config FILE] [flags]   simulate trucks, rain gauges and depth sensors
//	urbanwatch replay [-config FILE] [flags]   run a city configuration over recorded telemetry
//	urbanwatch check  [-config FILE]           validate configuration, registry and city
//
// main only parses flags and turns signals into a context; app.Run does the
// rest, so tests start the same code in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
)

const usage = `urbanwatch: muck-truck supervision and flood watch.

Usage:
  urbanwatch serve [-config FILE] [flags]   run the service (embedded MQTT broker, spool, InfluxDB writer)
  urbanwatch sim   [-config FILE] [flags]   publish simulated Weifang traffic over MQTT
  urbanwatch replay [-config FILE] [flags]  print the alerts a city raises over recorded telemetry, or compare two
  urbanwatch check [-config FILE]           validate the configuration, the device registry and the city
  urbanwatch check -hash-secret SECRET      print the registry form of a device secret
  urbanwatch user add|passwd|remove|list    manage the web console's users (passwords on standard input)
  urbanwatch backup -config FILE -to DIR    copy the data dir consistently, also while the service runs
  urbanwatch healthcheck [-url URL]         exit 0 if a running urbanwatch answers 200 on /readyz (for containers)

Run 'urbanwatch COMMAND -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	raiseFileLimit()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "urbanwatch:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "sim":
		return sim(ctx, args[1:], stderr)
	case "replay":
		return replay(ctx, args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "eval":
		return eval(args[1:], stdout, stderr)
	case "user":
		return user(args[1:], os.Stdin, stdout, stderr)
	case "backup":
		return backup(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// loadConfig reads the configuration and the registry it names.
func loadConfig(path string) (*config.Config, *config.Registry, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	reg, err := config.LoadRegistry(cfg.Registry)
	if err != nil {
		return nil, nil, err
	}
	return cfg, reg, nil
}

// newLogger builds the process logger: JSON lines, or a console format for
// terminals.
func newLogger(w io.Writer, level, format string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func check(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file")
	hash := fs.String("hash-secret", "", "print the registry form (secret_hash) of this device secret and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hash != "" {
		fmt.Fprintln(stdout, config.HashSecret(*hash))
		return nil
	}
	cfg, reg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	mode := "embedded broker on " + cfg.MQTT.Listen
	if cfg.MQTT.External.URL != "" {
		mode = "external broker " + cfg.MQTT.External.URL
	}
	store := "managed InfluxDB under " + cfg.DataDir
	if cfg.Influx.URL != "" {
		store = cfg.Influx.URL
	}
	city := "  city: none (no rules run)\n"
	if cfg.City != "" {
		c, err := config.LoadCity(cfg.City, reg)
		if err != nil {
			return fmt.Errorf("invalid city:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		}
		city = fmt.Sprintf("  city %s: %d companies, %d trucks, %d permits, %d sites, %d routes, %d zones, %d gauges\n",
			cfg.City, len(c.Companies), len(c.Trucks), len(c.Permits), len(c.Sites), len(c.Routes), len(c.Zones), len(c.Gauges))
		if cfg.Alerting != "" {
			al, err := config.LoadAlerting(cfg.Alerting, c)
			if err != nil {
				return fmt.Errorf("invalid alerting settings:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			}
			if err := alerting.Check(al); err != nil {
				return err
			}
			city += fmt.Sprintf("  alerting %s: %d people, %d groups, %d API users, sms via %s\n",
				cfg.Alerting, len(al.People), len(al.Groups), len(al.Users), al.SMS.Provider)
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n  registry %s: %d devices\n%s  mqtt: %s\n  influx: %s, bucket %s\n",
		*cfgPath, cfg.Registry, reg.Len(), city, mode, store, cfg.Influx.Bucket())
	return nil
}
