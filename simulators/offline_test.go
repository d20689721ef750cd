package simulators

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestTruckModelIsRunsTruck checks that a TruckModel without injection
// sends exactly what Run's truck sends.
func TestTruckModelIsRunsTruck(t *testing.T) {
	w := mustWorld()
	for i := range 8 {
		m := NewTruckModel(5, i, nil)
		tr := newTruck(w, 5, i, truckHasLoad(i))
		for k := range 3600 {
			now := night0.Add(time.Duration(k) * time.Second)
			got, want := m.Step(now, nil), tr.Step(now, nil)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("truck %d at %s: model sent %v, Run's truck %v", i, now, got, want)
			}
		}
	}
}

// TestInjection checks the injected violations: a detour far off the
// route and back, a roadside dump well outside every site with the body
// raised, and an outage during which nothing is sent.
func TestInjection(t *testing.T) {
	var detours, dumps, outages int
	for i := range 6 {
		m := NewTruckModel(9, i, &Injection{DetourP: 1, DumpP: 1, OutageP: 1, NotAfter: night0.Add(5 * time.Hour)})
		var wasDetour, wasDump, wasOut bool
		var silent time.Duration
		maxOff := 0.0
		for k := range 6 * 3600 {
			now := night0.Add(time.Duration(k) * time.Second)
			out := m.Step(now, nil)
			tt := m.Truth()
			p := toXY(tt.Lat, tt.Lon)
			switch {
			case tt.Outage:
				if len(out) > 0 {
					t.Fatalf("truck %d sent %d records during an outage", i, len(out))
				}
				silent += time.Second
			case tt.Detour:
				maxOff = math.Max(maxOff, distToPath(m.t.rt.pts, p))
			case tt.RoadDump && tt.Body == telemetry.BodyRaised:
				for _, s := range Sites() {
					if d := dist(p, toXY(s.Lat, s.Lon)); d < s.RadiusM+SiteMarginM+dumpClearM {
						t.Fatalf("truck %d dumps %.0f m from the centre of %s", i, d, s.ID)
					}
				}
				if tt.SpeedKmh != 0 {
					t.Fatalf("truck %d dumps at %.1f km/h", i, tt.SpeedKmh)
				}
			}
			if wasDetour && !tt.Detour {
				detours++
				if maxOff < detourMinM-1 {
					t.Errorf("truck %d: detour reached only %.0f m off its route", i, maxOff)
				}
				maxOff = 0
			}
			if wasDump && !tt.RoadDump {
				dumps++
				if tt.Loaded {
					t.Errorf("truck %d still loaded after a roadside dump", i)
				}
			}
			if wasOut && !tt.Outage {
				outages++
				if silent < outageMinS*time.Second-time.Second || silent > outageMaxS*time.Second+time.Second {
					t.Errorf("truck %d silent for %s", i, silent)
				}
				silent = 0
			}
			if now.After(night0.Add(5*time.Hour)) && (tt.Detour && !wasDetour || tt.Outage && !wasOut) {
				t.Errorf("truck %d: an injection starts after NotAfter", i)
			}
			wasDetour, wasDump, wasOut = tt.Detour, tt.RoadDump, tt.Outage
		}
	}
	if detours == 0 || dumps == 0 || outages == 0 {
		t.Errorf("%d detours, %d roadside dumps, %d outages: want some of each", detours, dumps, outages)
	}
}
