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

// TestTruckOffences checks the offences a truck commits: overloaded loads
// above its rated load's 10 % tolerance and other loads well under it;
// loaded departures from a site with a wash area stopping 25–40 s in it
// (unless the trip leaves unwashed); spills and glitches at speed clear of
// every site, a spill keeping the load low, a glitch only the reading.
func TestTruckOffences(t *testing.T) {
	w := mustWorld()
	var over, normal, washes, spills, glitches int
	for i := range 12 {
		m := NewTruckModel(11, i, &Injection{OverloadP: 0.5, UnwashedP: 0.3, SpillP: 0.5, GlitchP: 0.5,
			NotAfter: night0.Add(5 * time.Hour)})
		cs := w.construction[m.t.c]
		var washed time.Duration
		var prev TruckTruth
		for k := range 6 * 3600 {
			now := night0.Add(time.Duration(k) * time.Second)
			out := m.Step(now, nil)
			tt := m.Truth()
			p := toXY(tt.Lat, tt.Lon)
			if tt.Washing {
				washed += time.Second
				if cs.wash == nil || !inPolygon(cs.wash, p) {
					t.Fatalf("truck %d washes outside a wash area, at %v", i, p)
				}
			}
			if m.t.phase == phDriving && m.t.loaded && m.t.s > washFarM+5 && washed > 0 {
				if washed < washMinS*time.Second-time.Second || washed > washMaxS*time.Second+time.Second {
					t.Errorf("truck %d washed %s", i, washed)
				}
				washes++
				washed = 0
			}
			if prev.Loaded && tt.Loaded && tt.LoadKg < prev.LoadKg-100 && !tt.RoadDump && m.t.phase == phDriving {
				spills++
				if prev.SpeedKmh < spillMinKmh || !m.t.clearOfSites(0) {
					t.Errorf("truck %d spills at %.1f km/h, near a site %v", i, prev.SpeedKmh, !m.t.clearOfSites(0))
				}
			}
			if tt.Glitch && !prev.Glitch {
				glitches++
				for _, r := range out {
					if r.Kind == telemetry.KindSensors && r.Sensors.HasLoad && r.Sensors.LoadKg > 0.82*tt.LoadKg {
						t.Errorf("truck %d: a glitch reads %v kg of %v", i, r.Sensors.LoadKg, tt.LoadKg)
					}
				}
			}
			if m.t.phase == phSealing && m.t.t < 1 {
				switch r := m.t.target / tt.RatedLoadKg; {
				case r >= 1.2 && r <= 1.45:
					over++
				case r >= 0.55 && r <= 0.95:
					normal++
				default:
					t.Errorf("truck %d loaded %.0f kg, rated %.0f", i, m.t.target, tt.RatedLoadKg)
				}
			}
			prev = tt
		}
	}
	if over == 0 || normal == 0 || washes == 0 || spills == 0 || glitches == 0 {
		t.Errorf("%d overloaded, %d normal loads, %d washes, %d spills, %d glitches: want some of each",
			over, normal, washes, spills, glitches)
	}
	t.Logf("%d overloaded, %d normal loads, %d washes, %d spills, %d glitches", over, normal, washes, spills, glitches)
}

// inPolygon is the even-odd test.
func inPolygon(ring []xy, p xy) bool {
	in := false
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		a, b := ring[i], ring[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}
