package simulators

import (
	"math"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// night0 is 22:00 in Weifang.
var night0 = time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)

// step is one second of a truck: its state after stepping and what it sent.
type step struct {
	now    time.Time
	phase  truckPhase
	loaded bool
	pos    xy
	load   float64
	out    []telemetry.Record
}

func simulate(w *world, seed int64, idx int, hasLoad bool, d time.Duration) (*truck, []step) {
	tr := newTruck(w, seed, idx, hasLoad)
	var steps []step
	for k := 0; k <= int(d/time.Second); k++ {
		now := night0.Add(time.Duration(k) * time.Second)
		out := tr.Step(now, nil)
		p, _ := tr.position()
		steps = append(steps, step{now, tr.phase, tr.loaded, p, tr.load, out})
	}
	return tr, steps
}

// distToRoad is the distance from p to the nearest road segment.
func distToRoad(w *world, p xy) float64 {
	best := math.Inf(1)
	for a, es := range w.net.adj {
		for _, e := range es {
			if e.To < a {
				continue
			}
			pa, pb := w.net.nodes[a].P, w.net.nodes[e.To].P
			ab := pb.sub(pa)
			f := clamp(p.sub(pa).dot(ab)/ab.dot(ab), 0, 1)
			best = math.Min(best, dist(p, lerp(pa, pb, f)))
		}
	}
	return best
}

func TestTruckNight(t *testing.T) {
	w := mustWorld()
	var moving []float64
	for idx := range 16 {
		tr, steps := simulate(w, 1, idx, true, 4*time.Hour)
		cs, ds := w.construction[tr.c], w.disposal[tr.d]
		dumps := 0
		var prev *telemetry.Record // previous live fix
		for i, s := range steps {
			switch s.phase {
			case phLoading:
				if dist(s.pos, cs.p) > cs.RadiusM {
					t.Fatalf("truck %d loads %.0f m from %s", idx, dist(s.pos, cs.p), cs.ID)
				}
			case phDumping:
				if dist(s.pos, ds.p) > ds.RadiusM {
					t.Fatalf("truck %d tips %.0f m from %s", idx, dist(s.pos, ds.p), ds.ID)
				}
				if steps[i-1].phase != phDumping {
					dumps++
				}
			case phLeaving:
				if s.load > 100 {
					t.Fatalf("truck %d leaves %s with %.0f kg", idx, ds.ID, s.load)
				}
			}
			for j := range s.out {
				r := &s.out[j]
				switch r.Kind {
				case telemetry.KindSensors:
					if r.Sensors.Body == telemetry.BodyRaised && dist(s.pos, ds.p) > ds.RadiusM {
						t.Fatalf("truck %d raises its body %.0f m from the disposal site", idx, dist(s.pos, ds.p))
					}
				case telemetry.KindGPS:
					f := r.Fix
					if !inBox(f.Lat, f.Lon) {
						t.Fatalf("truck %d fix outside the city: %+v", idx, f)
					}
					if f.Sats < 0 || f.Sats > 14 || f.Valid && f.Sats < 6 || f.SpeedKmh > 55 || f.Heading < 0 || f.Heading >= 360 {
						t.Fatalf("truck %d implausible fix %+v", idx, f)
					}
					if f.Valid && r.Seq%7 == 0 {
						if d := distToRoad(w, toXY(f.Lat, f.Lon)); d > 30 && dist(s.pos, cs.p) > cs.RadiusM+30 && dist(s.pos, ds.p) > ds.RadiusM+30 {
							t.Fatalf("truck %d fix %.0f m off the roads: %+v", idx, d, f)
						}
					}
					if s.phase == phDriving && f.Valid && f.SpeedKmh > 1 {
						moving = append(moving, f.SpeedKmh)
					}
					// Consecutive live fixes move as far as the speed says.
					if j == 0 && prev != nil && prev.Seq+1 == r.Seq && prev.Fix.Valid && f.Valid {
						moved := dist(toXY(prev.Fix.Lat, prev.Fix.Lon), toXY(f.Lat, f.Lon))
						want := (prev.Fix.SpeedKmh + f.SpeedKmh) / 2 / 3.6
						if math.Abs(moved-want) > 25 {
							t.Fatalf("truck %d moved %.1f m in 1 s at %.1f–%.1f km/h", idx, moved, prev.Fix.SpeedKmh, f.SpeedKmh)
						}
					}
					if j == 0 {
						prev = r
					}
				}
			}
		}
		if dumps < 2 {
			t.Errorf("truck %d tipped %d times in 4 h", idx, dumps)
		}
	}
	sort.Float64s(moving)
	q := func(f float64) float64 { return moving[int(f*float64(len(moving)-1))] }
	if q(0.5) < 25 || q(0.5) > 45 || q(0.95) > 50.5 || q(0.10) < 10 {
		t.Errorf("moving speeds p10 %.1f p50 %.1f p95 %.1f km/h", q(0.1), q(0.5), q(0.95))
	}
	in := 0
	for _, v := range moving {
		if v >= 20 && v <= 50 {
			in++
		}
	}
	if f := float64(in) / float64(len(moving)); f < 0.8 {
		t.Errorf("only %.0f %% of moving fixes at 20–50 km/h", 100*f)
	}
}

func TestTruckCoverDiscipline(t *testing.T) {
	w := mustWorld()
	loaded, closed, loadingOpen, loading := 0, 0, 0, 0
	for idx := range 30 {
		tr := newTruck(w, 2, idx, true)
		for k := 0; k <= 3*3600; k++ {
			tr.Step(night0.Add(time.Duration(k)*time.Second), nil)
			switch {
			case tr.phase == phDriving && tr.loaded:
				loaded++
				if tr.cover == telemetry.CoverClosed {
					closed++
				}
			case tr.phase == phLoading && tr.t > 30:
				loading++
				if tr.cover == telemetry.CoverOpen {
					loadingOpen++
				}
			}
		}
	}
	// Mostly closed; the few uncovered or faulty trips are the violations
	// the night teams look for.
	if f := float64(closed) / float64(loaded); f < 0.9 || f == 1 {
		t.Errorf("cover closed %.4f of loaded driving", f)
	}
	t.Logf("cover closed %d of %d loaded-driving seconds", closed, loaded)
	if loadingOpen != loading {
		t.Errorf("cover open in %d of %d loading seconds", loadingOpen, loading)
	}
}

func TestTruckBackfill(t *testing.T) {
	w := mustWorld()
	found := false
	for idx := 0; idx < 40 && !found; idx++ {
		_, steps := simulate(w, 3, idx, true, 2*time.Hour)
		var gpsSeqs, sensSeqs []uint64
		for _, s := range steps {
			var gps []telemetry.Record
			for _, r := range s.out {
				switch r.Kind {
				case telemetry.KindGPS:
					gps = append(gps, r)
					gpsSeqs = append(gpsSeqs, r.Seq)
				case telemetry.KindSensors:
					sensSeqs = append(sensSeqs, r.Seq)
				}
			}
			if len(gps) < 2 {
				if len(gps) == 1 && !gps[0].TS.Equal(s.now) {
					t.Fatalf("truck %d: live fix stamped %v at %v", idx, gps[0].TS, s.now)
				}
				continue
			}
			found = true
			// First the live fix, then the buffered ones: older ts, lower seq,
			// in their own order, covering a 30–120 s gap.
			live, back := gps[0], gps[1:]
			if !live.TS.Equal(s.now) {
				t.Fatalf("first fix after the gap is not live: %v at %v", live.TS, s.now)
			}
			for i, r := range back {
				if !r.TS.Before(live.TS) || r.Seq >= live.Seq || i > 0 && (r.Seq != back[i-1].Seq+1 || !r.TS.After(back[i-1].TS)) {
					t.Fatalf("back-filled fix %d: seq %d ts %v after live seq %d ts %v", i, r.Seq, r.TS, live.Seq, live.TS)
				}
			}
			if back[len(back)-1].Seq+1 != live.Seq {
				t.Fatalf("gap fixes %d..%d do not lead up to live %d", back[0].Seq, back[len(back)-1].Seq, live.Seq)
			}
			if n := len(back); n < minGapS-1 || n > maxGapS+1 {
				t.Fatalf("gap of %d fixes", n)
			}
		}
		if !found {
			continue
		}
		// Every seq is published exactly once, some out of order.
		for name, seqs := range map[string][]uint64{"gps": gpsSeqs, "sensors": sensSeqs} {
			if slices.IsSorted(seqs) && name == "gps" {
				t.Fatalf("%s stream in order despite a gap", name)
			}
			sorted := slices.Clone(seqs)
			slices.Sort(sorted)
			for i, s := range sorted {
				if s != uint64(i) {
					t.Fatalf("%s seqs not 0..n-1 exactly once: position %d holds %d", name, i, s)
				}
			}
		}
	}
	if !found {
		t.Fatal("no signal gap in 40 truck-nights")
	}
}

func TestTruckSensorsCadence(t *testing.T) {
	w := mustWorld()
	for _, hasLoad := range []bool{true, false} {
		_, steps := simulate(w, 4, 1, hasLoad, time.Hour)
		fixTS := map[uint64]time.Time{}
		sensTS := map[time.Time]telemetry.SensorState{}
		for _, s := range steps {
			for _, r := range s.out {
				if r.Kind == telemetry.KindGPS {
					fixTS[r.Seq] = r.TS
				} else {
					sensTS[r.TS] = r.Sensors
					if r.Sensors.HasLoad != hasLoad || !hasLoad && r.Sensors.LoadKg != 0 {
						t.Fatalf("hasLoad %v: sensors %+v", hasLoad, r.Sensors)
					}
				}
			}
		}
		for seq, ts := range fixTS {
			if _, ok := sensTS[ts]; seq%sensorsEvery == 0 && !ok {
				t.Fatalf("no sensors message with fix %d", seq)
			}
		}
		if len(sensTS) < len(fixTS)/sensorsEvery {
			t.Fatalf("%d sensors messages for %d fixes", len(sensTS), len(fixTS))
		}
	}
}

func TestTruckDeterministic(t *testing.T) {
	w := mustWorld()
	_, a := simulate(w, 5, 9, true, 20*time.Minute)
	_, b := simulate(w, 5, 9, true, 20*time.Minute)
	_, c := simulate(w, 6, 9, true, 20*time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different night")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seed, same night")
	}
}

func TestTruckIrregularSteps(t *testing.T) {
	w := mustWorld()
	tr := newTruck(w, 1, 0, true)
	now := night0
	for _, d := range []time.Duration{0, 30 * time.Second, 10 * time.Minute, -time.Second, 250 * time.Millisecond, time.Hour} {
		now = now.Add(d)
		out := tr.Step(now, nil)
		if tr.gap <= 0 && (len(out) == 0 || out[0].Kind != telemetry.KindGPS) {
			t.Fatalf("step %v: %d records", d, len(out))
		}
	}
}
