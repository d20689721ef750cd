package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/simulators/scenario"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// eval runs the rules over simulated nights with exact ground truth and
// prints precision and recall per rule (make eval).
func eval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	trucks := fs.Int("trucks", 500, "simulated trucks")
	rain := fs.Int("rain-gauges", 100, "simulated rain gauges")
	depth := fs.Int("depth-points", 50, "simulated water-depth points")
	hours := fs.Float64("hours", 8, "length of the night")
	seed := fs.Int64("seed", 1, "the night's seed")
	storm := fs.Bool("storm", true, "a rainstorm crosses the city")
	if err := fs.Parse(args); err != nil {
		return err
	}
	failed := 0
	fmt.Fprintln(stdout, "Hand-made scenarios (exact alerts, no others):")
	for _, s := range scenario.Scenarios() {
		alerts, err := runScenario(s.City, func(emit func(*telemetry.Record)) {
			for i := range s.Records {
				emit(&s.Records[i])
			}
		}, s.Start.Add(s.Duration))
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		sc := score(alerts, s.Expect)
		status := "ok"
		if sc.total().falsePos > 0 || sc.total().missed > 0 {
			status, failed = "FAIL", failed+1
		}
		fmt.Fprintf(stdout, "  %-4s %-40s expected %d, raised %d\n", status, s.Name, len(s.Expect), len(alerts))
	}

	o := scenario.NightOptions{Trucks: *trucks, RainGauges: *rain, DepthPoints: *depth, Seed: *seed, Storm: *storm,
		Duration: time.Duration(*hours * float64(time.Hour))}
	// The engine is fed as the night is generated, so memory stays flat
	// at any size.
	city := scenario.NightCity(o)
	start := time.Now()
	records := 0
	var night scenario.Scenario
	alerts, err := runScenario(city, func(emit func(*telemetry.Record)) {
		night = scenario.StreamNight(o, func(r *telemetry.Record) { records++; emit(r) })
	}, time.Time{})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "\nSimulated night: %d trucks, %d rain gauges, %d depth points, %.1f h, storm %v, seed %d\n",
		*trucks, *rain, *depth, *hours, *storm, *seed)
	fmt.Fprintf(stdout, "%d records generated and evaluated in %s\n%s\n\n", records, elapsed.Round(time.Millisecond), night.Note)
	sc := score(alerts, night.Expect)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rule\ttruth\toptional\traised\tcorrect\tfalse alarms\tmissed\tprecision\trecall\t")
	var rulesSeen []string
	for r := range sc {
		rulesSeen = append(rulesSeen, r)
	}
	sort.Strings(rulesSeen)
	for _, r := range append(rulesSeen, "all") {
		c := sc[r]
		if r == "all" {
			c = sc.total()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r, c.truth, c.optional, c.raised, c.correct,
			c.falsePos, c.missed, ratio(c.correct, c.raised), ratio(c.truth-c.missed, c.truth))
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d hand-made scenarios failed", failed)
	}
	return nil
}

// runScenario feeds what feed emits to a fresh engine and returns the
// alerts it raised (first events only: a raise is one alert).
// A zero end closes the watermark at the last record's time.
func runScenario(city *config.City, feed func(emit func(*telemetry.Record)), end time.Time) ([]telemetry.Alert, error) {
	if err := city.Validate(nil); err != nil {
		return nil, err
	}
	var out []telemetry.Alert
	e, err := rules.New(rules.Options{City: city, Sink: rules.SinkFunc(func(a *telemetry.Alert) {
		if a.State == telemetry.AlertFiring && a.Version == 1 {
			out = append(out, *a)
		}
	})})
	if err != nil {
		return nil, err
	}
	var last time.Time
	feed(func(r *telemetry.Record) {
		if r.TS.After(last) {
			last = r.TS
		}
		e.Process(r)
	})
	if end.IsZero() {
		end = last
	}
	e.AdvanceTo(end)
	return out, nil
}

type counts struct{ truth, optional, raised, correct, falsePos, missed int }

type scores map[string]*counts

func (s scores) total() *counts {
	t := &counts{}
	for _, c := range s {
		t.truth += c.truth
		t.optional += c.optional
		t.raised += c.raised
		t.correct += c.correct
		t.falsePos += c.falsePos
		t.missed += c.missed
	}
	return t
}

// score matches raised alerts to the truth: same rule and subject, firing
// within the expectation's tolerance, each used once. An alert matching an
// optional expectation is correct; an optional expectation left unmatched
// is not missed.
func score(alerts []telemetry.Alert, truth []scenario.Expect) scores {
	s := scores{}
	get := func(r string) *counts {
		if s[r] == nil {
			s[r] = &counts{}
		}
		return s[r]
	}
	used := make([]bool, len(truth))
	for _, x := range truth {
		if x.Optional {
			get(x.Rule).optional++
		} else {
			get(x.Rule).truth++
		}
	}
	for _, a := range alerts {
		c := get(a.Rule)
		c.raised++
		best, bestD := -1, time.Duration(1<<62)
		for i, x := range truth {
			if used[i] || x.Rule != a.Rule || x.Subject != a.Subject.ID {
				continue
			}
			d := a.TS.Sub(x.At)
			if d < 0 {
				d = -d
			}
			if d <= x.Tol && d < bestD {
				best, bestD = i, d
			}
		}
		if best < 0 {
			c.falsePos++
			continue
		}
		used[best] = true
		c.correct++
	}
	for i, x := range truth {
		if !used[i] && !x.Optional {
			get(x.Rule).missed++
		}
	}
	return s
}

func ratio(a, b int) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(a)/float64(b))
}
