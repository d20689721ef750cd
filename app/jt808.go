package app

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest/jt808"
)

// newJT808 builds the JT/T 808 gateway when jt808.listen is set: it hands
// every mapped report to the same ingester as the MQTT broker, so 808
// reports are validated, deduplicated, spooled before their reply and
// judged by the rules exactly as MQTT messages are (docs/jt808.md).
func (a *App) newJT808() error {
	c := a.cfg.JT808
	if c.Listen == "" {
		return nil
	}
	profiles, err := jt808Profiles(c.Profiles)
	if err != nil {
		return err
	}
	var missing []string
	for name, users := range a.o.Registry.JT808Profiles() {
		if name == "" {
			continue
		}
		if _, ok := profiles[name]; !ok {
			sort.Strings(users)
			missing = append(missing, fmt.Sprintf("%q (used by %s)", name, strings.Join(users, ", ")))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("registry names jt808 profiles urbanwatch.yaml does not define: %s", strings.Join(missing, "; "))
	}
	a.jt808, err = jt808.New(jt808.Options{
		Addr:           c.Listen,
		MaxConnections: c.MaxConnections,
		IdleTimeout:    c.IdleTimeout,
		Profiles:       profiles,
		Terminals:      a.o.Registry,
		Ingest:         a.ingester,
		DeadLetters:    a.dead,
		Now:            a.o.Now,
		Logger:         a.log.With().Str("component", "jt808").Logger(),
		Registerer:     a.metrics,
	})
	return err
}

// jt808Profiles turns the configured profiles into the gateway's.
func jt808Profiles(in map[string]config.JT808Profile) (map[string]jt808.Profile, error) {
	out := map[string]jt808.Profile{"default": jt808.DefaultProfile()}
	src := func(s config.JT808Source) jt808.Source {
		switch {
		case s.StatusBit != nil:
			return jt808.Source{Kind: jt808.FromStatus, ID: uint8(*s.StatusBit), Invert: s.Invert}
		case s.Extra != 0:
			return jt808.Source{Kind: jt808.FromExtra, ID: uint8(s.Extra)}
		}
		return jt808.Source{}
	}
	for name, p := range in {
		q := jt808.Profile{Cover: src(p.Cover), Body: src(p.Body), LoadExtra: uint8(p.Load.Extra), LoadScale: p.Load.Scale}
		if q.LoadScale == 0 {
			q.LoadScale = 1
		}
		if s := p.LoadStateKg; s != nil {
			q.LoadStateKg = &[3]float64{s.Empty, s.Half, s.Full}
		}
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("jt808.profiles.%s: %w", name, err)
		}
		out[name] = q
	}
	return out, nil
}

// JT808Addr returns the JT/T 808 gateway's bound address ("" when it is
// off or not yet listening).
func (a *App) JT808Addr() string {
	if a.jt808 == nil {
		return ""
	}
	return a.jt808.Addr()
}
