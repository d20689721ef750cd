package app

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
	"github.com/urbanwatch/urbanwatch/web"
)

// The console (web/) sees every record the rules evaluate, in the same
// order, and reads stored history from the InfluxDB the writer drains to:
//
//	rules stage --Observe--> console map, trip log
//	InfluxDB --History--> tracks, evidence, flood board
//	alerting.Manager --Watch--> console stream

// newConsole builds the console when console.users names a users file.
func (a *App) newConsole() error {
	path := a.cfg.Console.Users
	if path == "" || a.alerting == nil {
		return nil
	}
	users, err := config.LoadUsers(path, a.o.City)
	if err != nil {
		return err
	}
	var proxies []netip.Prefix
	for _, p := range a.cfg.Console.TrustedProxies {
		pf, err := netip.ParsePrefix(p)
		if err != nil {
			ad, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return fmt.Errorf("console.trusted_proxies %q: %w", p, err)
			}
			pf = netip.PrefixFrom(ad, ad.BitLen())
		}
		proxies = append(proxies, pf)
	}
	a.console, err = web.New(web.Options{TrustedProxies: proxies,
		Users: users, City: a.o.City, Alerts: a.alerting, History: &influxHistory{a: a},
		DataDir: a.cfg.DataDir, TileURL: a.cfg.Console.TileURL, SessionTTL: a.cfg.Console.SessionTTL,
		SecureCookies: a.cfg.Console.SecureCookies, Now: a.o.Now,
		Logger:     a.log.With().Str("component", "console").Logger(),
		Registerer: a.metrics,
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if a.rules != nil {
		a.rules.observe = a.console.Observe
	}
	return nil
}

// reloadUsers reads the users file again (with the city in force).
func (a *App) reloadUsers(c *config.City) error {
	if a.console == nil {
		return nil
	}
	users, err := config.LoadUsers(a.cfg.Console.Users, c)
	if err != nil {
		return err
	}
	a.console.SetUsers(users)
	return nil
}

// Console returns the web console, or nil when it is off.
func (a *App) Console() *web.Server { return a.console }

// influxHistory reads stored telemetry for the console from the InfluxDB
// the writer drains to (known once Run has started a managed one).
type influxHistory struct{ a *App }

func (h *influxHistory) base() (u, user, pass string, err error) {
	raw := h.a.influx
	if raw == "" {
		return "", "", "", fmt.Errorf("InfluxDB is not running yet")
	}
	pu, err := url.Parse(raw)
	if err != nil {
		return "", "", "", err
	}
	user, pass, _ = strings.Cut(h.a.cfg.Influx.Token, ":")
	if pu.User != nil {
		user = pu.User.Username()
		pass, _ = pu.User.Password()
		pu.User = nil
	}
	return pu.String(), user, pass, nil
}

// Records implements web.History.
func (h *influxHistory) Records(ctx context.Context, devices []string, kinds []telemetry.Kind, from, to time.Time) ([]telemetry.Record, error) {
	u, user, pass, err := h.base()
	if err != nil {
		return nil, err
	}
	var out []telemetry.Record
	err = influx.ReadRecords(ctx, influx.ReadOptions{URL: u, User: user, Password: pass,
		Database: h.a.cfg.Influx.Database, RetentionPolicy: h.a.cfg.Influx.RetentionPolicy,
		From: from, To: to, Window: to.Sub(from) + time.Second, Devices: devices, Kinds: kinds},
		func(r *telemetry.Record) error {
			out = append(out, *r)
			return nil
		})
	// ReadRecords delivers a window in arrival order; the console wants
	// device time.
	slices.SortStableFunc(out, func(x, y telemetry.Record) int { return x.TS.Compare(y.TS) })
	return out, err
}

// Buckets implements web.History.
func (h *influxHistory) Buckets(ctx context.Context, kind telemetry.Kind, fn string, to time.Time, bucket time.Duration, n int) (map[string][]float64, error) {
	u, user, pass, err := h.base()
	if err != nil {
		return nil, err
	}
	field := map[telemetry.Kind]string{telemetry.KindRain: "mm", telemetry.KindDepth: "depth_cm"}[kind]
	if field == "" {
		return nil, fmt.Errorf("no aggregate for %s", kind)
	}
	return influx.Aggregate(ctx, influx.AggregateOptions{URL: u, User: user, Password: pass,
		Database: h.a.cfg.Influx.Database, RetentionPolicy: h.a.cfg.Influx.RetentionPolicy,
		Measurement: kind.Measurement(), Field: field, Func: fn, To: to, Bucket: bucket, N: n})
}
