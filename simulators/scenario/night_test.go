package scenario

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// shortNight is a night small enough for tests (a few seconds under -race)
// that still raises every rule: injection rates ×10, fixes every 5 s.
var shortNight = NightOptions{Trucks: 80, RainGauges: 30, DepthPoints: 40, Seed: 3, Storm: true,
	Duration: 150 * time.Minute, FixInterval: 5 * time.Second, Inject: 10}

// nightRules are the rules Night covers.
var nightRules = []string{RuleUncoveredLoad, RuleOffRoute, RuleIllegalDumping, RuleOutsidePermitHours, RuleNoPermit,
	RuleSignalLost, RuleZoneViolation, RuleRainstorm, RuleHeavyRain, RuleWaterlogging, RuleSensorOffline,
	RuleOverload, RuleUnwashedExit, RuleSpillage}

// digest hashes a night's records and expectations.
func digest(s *Scenario, recs func(func(*telemetry.Record))) string {
	h := sha256.New()
	n := 0
	recs(func(r *telemetry.Record) {
		n++
		fmt.Fprintf(h, "%s|%d|%d|%d|%d|%v|", r.Device, r.Kind, r.Seq, r.TS.UnixNano(), r.Received.UnixNano(), r.Late)
		for _, f := range []float64{r.Fix.Lat, r.Fix.Lon, r.Fix.SpeedKmh, r.Sensors.LoadKg, r.Rain.MM, r.Depth.DepthCM} {
			h.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)))
		}
		fmt.Fprintf(h, "%d|%v|%d|%d\n", r.Fix.Sats, r.Fix.Valid, r.Sensors.Cover, r.Sensors.Body)
	})
	for _, e := range s.Expect {
		fmt.Fprintf(h, "%+v\n", e)
	}
	return fmt.Sprintf("%d records %x", n, h.Sum(nil)[:8])
}

func TestNight(t *testing.T) {
	s := Night(shortNight)
	if err := s.City.Validate(nil); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, &s)
	late := 0
	for _, r := range s.Records {
		if r.Late {
			late++
		}
	}
	if late == 0 {
		t.Error("no back-filled records: the night has no tunnels")
	}
	count := map[string]int{}
	for _, e := range s.Expect {
		if e.At.Before(s.Start) || e.At.After(s.Start.Add(s.Duration)) {
			t.Errorf("expectation %+v outside the night", e)
		}
		if !e.Optional {
			count[e.Rule]++
		}
	}
	for _, r := range nightRules {
		if count[r] == 0 {
			t.Errorf("no required %s in the night's truth", r)
		}
	}
	t.Logf("%s\ntruth by rule (required): %v", s.Note, count)
}

// TestNightDeterministic checks that the same options give the same
// records and truth, whether streamed or collected, and another seed
// another night.
func TestNightDeterministic(t *testing.T) {
	o := NightOptions{Trucks: 20, RainGauges: 10, DepthPoints: 10, Seed: 4, Storm: true,
		Duration: 60 * time.Minute, FixInterval: 5 * time.Second, Inject: 10}
	s := Night(o)
	d1 := digest(&s, func(f func(*telemetry.Record)) {
		for i := range s.Records {
			f(&s.Records[i])
		}
	})
	var again Scenario
	if d2 := digest(&again, func(f func(*telemetry.Record)) { again = StreamNight(o, f) }); d1 != d2 {
		t.Errorf("the same night twice: %s, then %s", d1, d2)
	}
	o.Seed++
	var other Scenario
	if digest(&other, func(f func(*telemetry.Record)) { other = StreamNight(o, f) }) == d1 {
		t.Error("another seed gives the same night")
	}
	if len(s.Expect) == 0 {
		t.Error("no truth")
	}
	o.Seed--
	if !reflect.DeepEqual(NightCity(o), s.City) {
		t.Error("NightCity differs from the night's city")
	}
}

func TestNightWithoutInjection(t *testing.T) {
	o := shortNight
	o.Inject, o.Storm, o.Duration = -1, false, 40*time.Minute
	s := StreamNight(o, func(*telemetry.Record) {})
	for _, e := range s.Expect {
		switch e.Rule {
		case RuleUncoveredLoad, RuleZoneViolation: // the models' own
		default:
			t.Errorf("without injection or storm: %+v", e)
		}
	}
	if s.City.Permits[0].Windows[0] != night {
		t.Errorf("a night from 20:00 for 40 min: window %v, want 20:00-06:00", s.City.Permits[0].Windows[0])
	}
}

// TestNightFull plays the evaluation night (2,000 trucks, 200 rain gauges,
// 100 depth points, 8 h, storm: about a minute, 70 million records, not
// kept) and logs its truth by rule. It runs only with
// URBANWATCH_NIGHT_FULL=1.
func TestNightFull(t *testing.T) {
	if os.Getenv("URBANWATCH_NIGHT_FULL") == "" {
		t.Skip("set URBANWATCH_NIGHT_FULL=1 to play the full night")
	}
	n := 0
	s := StreamNight(NightOptions{Trucks: 2000, RainGauges: 200, DepthPoints: 100, Seed: 1, Storm: true},
		func(*telemetry.Record) { n++ })
	all, required := map[string]int{}, map[string]int{}
	for _, e := range s.Expect {
		all[e.Rule]++
		if !e.Optional {
			required[e.Rule]++
		}
	}
	t.Logf("%s\n%d records; expectations by rule: %v; required: %v", s.Note, n, all, required)
}
