package simulators

import (
	"math/rand/v2"
	"time"
)

// halton returns the i-th element (1-based) of the van der Corput sequence
// in base b: well spread points in [0, 1) for any count.
func halton(i, b int) float64 {
	f, r := 1.0, 0.0
	for ; i > 0; i /= b {
		f /= float64(b)
		r += f * float64(i%b)
	}
	return r
}

// gridBounds is the extent of the road grid, where gauges are installed.
func gridBounds() (sw, ne xy) {
	sw = toXY(ewStreets[0].lat, nsRoads[0].lon)
	ne = toXY(ewStreets[len(ewStreets)-1].lat, nsRoads[len(nsRoads)-1].lon)
	return sw, ne
}

// newField returns the night's rain: the storm (track offset by seed within
// ±1 km) or drizzle.
func newField(seed int64, withStorm bool) rainField {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7261696e))
	if withStorm {
		return newStorm(2000*rng.Float64() - 1000)
	}
	return drizzle{phase: 6.283 * rng.Float64()}
}

// newRainGauges spreads n gauges over the grid (Halton points, jittered by
// up to ±150 m by seed).
func newRainGauges(n int, seed int64, f rainField, start time.Time, interval time.Duration) []*rainGauge {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x67617567))
	sw, ne := gridBounds()
	gs := make([]*rainGauge, n)
	for i := range gs {
		p := xy{sw.X + (ne.X-sw.X)*halton(i+1, 2), sw.Y + (ne.Y-sw.Y)*halton(i+1, 3)}
		p = p.add(xy{300*rng.Float64() - 150, 300*rng.Float64() - 150})
		gs[i] = &rainGauge{p: p, factor: 0.85 + 0.3*rng.Float64(), field: f, start: start, interval: interval}
	}
	return gs
}

// newDepthPoints puts n depth sensors at road intersections, a quarter of
// them (the first) at underpasses that flood fast.
func newDepthPoints(n int, seed int64, w *world, f rainField, start time.Time, interval time.Duration) []*depthPoint {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x64657074))
	grid := len(ewStreets) * len(nsRoads)
	order := rng.Perm(grid)
	ds := make([]*depthPoint, n)
	for i := range ds {
		p := w.net.nodes[order[i%grid]].P.add(xy{60*rng.Float64() - 30, 60*rng.Float64() - 30})
		d := &depthPoint{p: p, field: f, start: start, interval: interval, drainK: 0.3,
			rng: rand.New(rand.NewPCG(uint64(seed), 0x64000000|uint64(i)))}
		if i < (n+3)/4 {
			d.underpass = true
			d.gain, d.drain = 0.7+0.4*rng.Float64(), 10+4*rng.Float64()
		} else {
			d.gain, d.drain = 0.12+0.18*rng.Float64(), 4+4*rng.Float64()
		}
		ds[i] = d
	}
	return ds
}
