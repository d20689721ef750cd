package main

import (
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/simulators/scenario"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestScenariosRaiseExactlyTheirAlerts runs every hand-made scenario —
// each violation, and the near misses that must stay silent — through the
// engine and requires exactly the expected alerts: rule, subject and time
// within the tolerance, and no others.
func TestScenariosRaiseExactlyTheirAlerts(t *testing.T) {
	for _, s := range scenario.Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			alerts, err := runScenario(s.City, func(emit func(*telemetry.Record)) {
				for i := range s.Records {
					emit(&s.Records[i])
				}
			}, s.Start.Add(s.Duration))
			if err != nil {
				t.Fatal(err)
			}
			c := score(alerts, s.Expect).total()
			if c.falsePos != 0 || c.missed != 0 {
				t.Fatalf("%s: %d false alarms, %d missed\nraised: %v\nexpected: %v", s.Note, c.falsePos, c.missed,
					alertList(alerts), s.Expect)
			}
		})
	}
}

// TestSimulatedNightGroundTruth plays an hour of a stormy night with
// injected violations and requires every alert the ground truth lists and
// nothing else.
func TestSimulatedNightGroundTruth(t *testing.T) {
	o := scenario.NightOptions{Trucks: 60, RainGauges: 30, DepthPoints: 15, Seed: 7, Storm: true,
		Duration: 90 * time.Minute, Inject: 3}
	city := scenario.NightCity(o)
	var night scenario.Scenario
	alerts, err := runScenario(city, func(emit func(*telemetry.Record)) {
		night = scenario.StreamNight(o, emit)
	}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sc := score(alerts, night.Expect)
	if tot := sc.total(); tot.truth < 20 || tot.falsePos != 0 || tot.missed != 0 {
		for r, c := range sc {
			t.Logf("%s: %+v", r, *c)
		}
		t.Fatalf("night: %d expected, %d raised, %d false alarms, %d missed", tot.truth, tot.raised, tot.falsePos, tot.missed)
	}
}

func alertList(as []telemetry.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Rule+" "+a.Subject.ID+" "+a.TS.Format(time.TimeOnly))
	}
	return out
}
