package simulators

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// tipMM is the tipping-bucket resolution (GB/T 11832 allows 0.1, 0.2, 0.5).
const tipMM = 0.2

// rainSubStep bounds the integration step of rain and water depth.
const rainSubStep = 10 * time.Second

// rainGauge is a tipping-bucket gauge: each report carries the whole tips
// counted since the previous report; the part of a tip not yet filled stays
// in the bucket.
type rainGauge struct {
	p        xy
	factor   float64 // local exposure, ±15 %
	field    rainField
	start    time.Time
	interval time.Duration
	bucket   float64 // mm collected, not yet tipped
	lastTrue float64 // mm that fell over the last report's interval, before tipping
	seq      uint64
	last     time.Time
}

// Step integrates rain from the previous report (or one interval ago, on the
// first call) to now and appends the rain report.
func (g *rainGauge) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	from := g.last
	if from.IsZero() {
		from = now.Add(-g.interval)
	}
	g.last = now
	g.lastTrue = g.factor * integrate(g.field, g.p, g.start, from, now)
	g.bucket += g.lastTrue
	tips := math.Floor(g.bucket/tipMM + 1e-9)
	g.bucket = math.Max(0, g.bucket-tips*tipMM)
	// A device reports whole seconds; interval_s must stay > 0.
	iv := now.Sub(from).Seconds()
	if r := math.Round(iv); g.interval >= time.Second && r > 0 {
		iv = r
	}
	iv = math.Max(iv, 0.001)
	out = append(out, telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{Seq: g.seq, TS: now},
		Rain: telemetry.RainReading{MM: tips * tipMM, IntervalS: iv}})
	g.seq++
	return out
}

// integrate returns the rain in mm at p between from and to (midpoint rule
// in steps of at most rainSubStep).
func integrate(f rainField, p xy, start, from, to time.Time) float64 {
	total := 0.0
	for t := from; t.Before(to); {
		next := t.Add(rainSubStep)
		if next.After(to) {
			next = to
		}
		mid := t.Add(next.Sub(t) / 2)
		total += f.rate(p, mid.Sub(start).Hours()) * next.Sub(t).Hours()
		t = next
	}
	return total
}

// depthPoint is a water-depth sensor at a waterlogging point. Water rises
// with the rain falling on the catchment (gain cm of depth per mm of rain)
// and drains at drain + drainK·depth cm/h; underpasses have a large gain.
type depthPoint struct {
	p         xy
	underpass bool
	gain      float64 // cm per mm
	drain     float64 // cm/h
	drainK    float64 // 1/h
	field     rainField
	start     time.Time
	interval  time.Duration
	depth     float64 // cm
	rng       *rand.Rand
	seq       uint64
	last      time.Time
}

// Step advances the water level to now and appends the depth report
// (±0.2 cm sensor noise, never below 0).
func (d *depthPoint) Step(now time.Time, out []telemetry.Record) []telemetry.Record {
	from := d.last
	if from.IsZero() {
		from = now
	}
	d.last = now
	for t := from; t.Before(now); {
		next := t.Add(rainSubStep)
		if next.After(now) {
			next = now
		}
		h := next.Sub(t).Hours()
		rate := d.field.rate(d.p, t.Add(next.Sub(t)/2).Sub(d.start).Hours())
		d.depth = math.Max(0, d.depth+(d.gain*rate-d.drain-d.drainK*d.depth)*h)
		t = next
	}
	v := 0.0
	if d.depth > 0 {
		v = math.Max(0, d.depth+0.2*d.rng.NormFloat64())
	}
	out = append(out, telemetry.Record{Kind: telemetry.KindDepth, Header: telemetry.Header{Seq: d.seq, TS: now},
		Depth: telemetry.DepthReading{DepthCM: v}})
	d.seq++
	return out
}
