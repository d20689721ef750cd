package simulators

import "math"

// rainField is rain intensity over the city: mm/h at p, h hours after the
// simulation started. Rates are ≥ 0.
type rainField interface {
	rate(p xy, h float64) float64
}

// The storm: a convective core embedded in a broad stratiform shield, moving
// ENE across the city. The core is an ellipse (σ 3.5 km along the track,
// 2.2 km across) peaking at 65 mm/h; it passes over the centre (or up to 1 km
// off, by seed) 1.25 h after the start at 10 km/h, so a gauge on the track
// gets ~50 mm in its worst hour and ~70 mm in three, while gauges 4 km off
// the track stay under 20 mm/h. Rain starts within minutes of the start and
// is over after 3.2 h.
const (
	stormBearing    = 70   // degrees, direction of travel
	stormSpeedKmh   = 10   // core speed
	stormCentreH    = 1.25 // hours after start the core is abeam the centre
	stormCorePeak   = 65   // mm/h
	stormSigmaAlong = 3500 // m
	stormSigmaCross = 2200 // m
	stormShieldPeak = 5    // mm/h
	stormShieldSig  = 18000
)

// storm is the moving rainstorm field.
type storm struct {
	dir, across xy // unit vectors: travel, and 90° left of it
	offset      float64
}

// newStorm places the track offset metres (positive = north-west of the
// centre) across the direction of travel.
func newStorm(offset float64) *storm {
	d := unitFromBearing(stormBearing)
	return &storm{dir: d, across: xy{-d.Y, d.X}, offset: offset}
}

// core is the storm centre at hour h.
func (s *storm) core(h float64) xy {
	return s.across.scale(s.offset).add(s.dir.scale((h - stormCentreH) * stormSpeedKmh * 1000))
}

func (s *storm) rate(p xy, h float64) float64 {
	if h <= 0 {
		return 0
	}
	coreEnv := smoothstep(0, 0.6, h) * (1 - smoothstep(2.0, 2.8, h))
	shieldEnv := smoothstep(0, 0.5, h) * (1 - smoothstep(2.3, 3.2, h))
	if coreEnv == 0 && shieldEnv == 0 {
		return 0
	}
	d := p.sub(s.core(h))
	a, c := d.dot(s.dir), d.dot(s.across)
	core := stormCorePeak * math.Exp(-a*a/(2*stormSigmaAlong*stormSigmaAlong)-c*c/(2*stormSigmaCross*stormSigmaCross))
	shield := stormShieldPeak * math.Exp(-d.dot(d)/(2*stormShieldSig*stormShieldSig))
	return coreEnv*core + shieldEnv*shield
}

// drizzle is the no-storm night: light rain under 1 mm/h coming and going in
// bands, dry about half the time.
type drizzle struct{ phase float64 }

func (z drizzle) rate(p xy, h float64) float64 {
	v := 0.7*math.Sin(2*math.Pi*h/1.6+p.X/9000+z.phase) + 0.3*math.Sin(2*math.Pi*h/0.7+p.Y/7000) - 0.1
	return math.Max(0, v)
}
