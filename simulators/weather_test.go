package simulators

import (
	"math"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// gaugeNight runs 200 gauges and 100 depth points for 8 hours at 1-minute
// reports and returns each gauge's reports (mm) and each point's depths.
func gaugeNight(t *testing.T, seed int64, withStorm bool) (mm, depth [][]float64, depthPts []*depthPoint) {
	t.Helper()
	f := newField(seed, withStorm)
	gs := newRainGauges(200, seed, f, night0, time.Minute)
	ds := newDepthPoints(100, seed, mustWorld(), f, night0, time.Minute)
	mm, depth = make([][]float64, len(gs)), make([][]float64, len(ds))
	for k := 1; k <= 8*60; k++ {
		now := night0.Add(time.Duration(k) * time.Minute)
		for i, g := range gs {
			r := g.Step(now, nil)
			if len(r) != 1 || r[0].Kind != telemetry.KindRain || r[0].Seq != uint64(k-1) || !r[0].TS.Equal(now) || r[0].Rain.IntervalS != 60 {
				t.Fatalf("gauge %d report %+v", i, r)
			}
			if tips := r[0].Rain.MM / tipMM; math.Abs(tips-math.Round(tips)) > 1e-9 || tips < 0 {
				t.Fatalf("gauge %d reported %v mm, not whole tips", i, r[0].Rain.MM)
			}
			mm[i] = append(mm[i], r[0].Rain.MM)
		}
		for i, d := range ds {
			r := d.Step(now, nil)
			if r[0].Kind != telemetry.KindDepth || r[0].Depth.DepthCM < 0 {
				t.Fatalf("depth point %d report %+v", i, r)
			}
			depth[i] = append(depth[i], r[0].Depth.DepthCM)
		}
	}
	return mm, depth, ds
}

// maxWindow is the largest sum of w consecutive values.
func maxWindow(v []float64, w int) float64 {
	best, s := 0.0, 0.0
	for i := range v {
		s += v[i]
		if i >= w {
			s -= v[i-w]
		}
		best = math.Max(best, s)
	}
	return best
}

func TestStormProfile(t *testing.T) {
	mm, depth, pts := gaugeNight(t, 1, true)
	var max1, max3, min3 float64 = 0, 0, math.Inf(1)
	over20, over50 := 0, 0
	for i, v := range mm {
		h1, h3, total := maxWindow(v, 60), maxWindow(v, 180), maxWindow(v, len(v))
		max1, max3, min3 = math.Max(max1, h1), math.Max(max3, h3), math.Min(min3, h3)
		if h1 >= 20 {
			over20++
		}
		if h3 >= 50 {
			over50++
		}
		if h1 > 80 || total > 120 {
			t.Errorf("gauge %d: %.1f mm in 1 h, %.1f mm in all", i, h1, total)
		}
		if after := maxWindow(v[4*60:], len(v)-4*60); after > 0 {
			t.Errorf("gauge %d: %.1f mm after the storm", i, after)
		}
	}
	t.Logf("storm: max %.1f mm/1h, %.1f mm/3h; %d/200 gauges ≥ 20 mm/1h, %d/200 ≥ 50 mm/3h; min 3h %.1f",
		max1, max3, over20, over50, min3)
	// Short-duration heavy rain (≥ 20 mm/1h) and the orange signal
	// (≥ 50 mm/3h) at some gauges, not all; nowhere near red (100 mm/3h).
	if max1 < 20 || max3 < 50 || max3 >= 100 {
		t.Errorf("peak gauge %.1f mm/1h, %.1f mm/3h", max1, max3)
	}
	if over50 == 0 || over50 > 150 || over20 == 200 || min3 >= 50 {
		t.Errorf("%d gauges ≥ 50 mm/3h, %d ≥ 20 mm/1h, min 3h %.1f", over50, over20, min3)
	}
	var underpass, road float64
	for i, d := range depth {
		m := maxWindow(d, 1)
		if pts[i].underpass {
			underpass = math.Max(underpass, m)
		} else {
			road = math.Max(road, m)
		}
		if last := d[len(d)-1]; last > 1 {
			t.Errorf("depth point %d still at %.1f cm hours after the storm", i, last)
		}
	}
	t.Logf("storm: deepest underpass %.1f cm, deepest road %.1f cm", underpass, road)
	if underpass < 25 || underpass > 80 || road >= underpass || road > 15 {
		t.Errorf("deepest underpass %.1f cm, road %.1f cm", underpass, road)
	}
}

func TestDrizzleStaysLight(t *testing.T) {
	mm, depth, _ := gaugeNight(t, 1, false)
	for i, v := range mm {
		if h1, h3 := maxWindow(v, 60), maxWindow(v, 180); h1 >= 5 || h3 >= 10 {
			t.Errorf("gauge %d: %.1f mm/1h, %.1f mm/3h in a drizzle", i, h1, h3)
		}
	}
	for i, d := range depth {
		if m := maxWindow(d, 1); m > 1 {
			t.Errorf("depth point %d at %.1f cm in a drizzle", i, m)
		}
	}
}

// The bucket keeps what has not tipped: reports add up to the rain that fell.
func TestGaugeConservesRain(t *testing.T) {
	f := newField(9, true)
	g := newRainGauges(1, 9, f, night0, time.Minute)[0]
	g.p = mustWorld().construction[0].p
	reported := 0.0
	for k := 1; k <= 4*60; k++ {
		r := g.Step(night0.Add(time.Duration(k)*time.Minute), nil)
		reported += r[0].Rain.MM
	}
	fell := g.factor * integrate(f, g.p, night0, night0, night0.Add(4*time.Hour))
	// First report covers the minute before the start: no rain then.
	if math.Abs(fell-reported-g.bucket) > 1e-6 || g.bucket >= tipMM {
		t.Fatalf("fell %.4f mm, reported %.4f, in bucket %.4f", fell, reported, g.bucket)
	}
}

func TestStormMovesAcrossTheCity(t *testing.T) {
	s := newStorm(0)
	west, east := toXY(36.70, 119.10), toXY(36.72, 119.22)
	peak := func(p xy) (h float64) {
		best := 0.0
		for x := 0.0; x < 4; x += 0.01 {
			if r := s.rate(p, x); r > best {
				best, h = r, x
			}
		}
		return h
	}
	if hw, he := peak(west), peak(east); hw >= he || he-hw < 0.5 {
		t.Fatalf("storm peaks in the west at %.2f h, in the east at %.2f h", hw, he)
	}
	if r := s.rate(xy{}, stormCentreH); r < 60 || r > 80 {
		t.Fatalf("core over the centre %.1f mm/h", r)
	}
}
