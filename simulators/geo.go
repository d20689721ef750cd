package simulators

import (
	"math"

	"github.com/paulmach/orb"
)

// The simulated city is projected onto a local plane centred on Weifang with
// an equirectangular projection on orb's sphere (orb.EarthRadius), so that
// distances agree with orb/geo to well under 0.1 % over the ~15 km city.
const (
	centreLat       = 36.71  // degrees N, Weifang centre
	centreLon       = 119.16 // degrees E
	metresPerDegLat = orb.EarthRadius * math.Pi / 180
)

// metresPerDegLon is metresPerDegLat scaled by cos(centreLat).
var metresPerDegLon = metresPerDegLat * math.Cos(centreLat*math.Pi/180)

// City box: every simulated position (before GPS noise) lies inside it.
const (
	boxMinLat = 36.655
	boxMaxLat = 36.765
	boxMinLon = 119.085
	boxMaxLon = 119.235
)

// xy is a point in metres east (X) and north (Y) of the city centre.
type xy struct{ X, Y float64 }

// toXY projects WGS-84 degrees onto the local plane.
func toXY(lat, lon float64) xy {
	return xy{X: (lon - centreLon) * metresPerDegLon, Y: (lat - centreLat) * metresPerDegLat}
}

// latLon is the inverse of toXY.
func (p xy) latLon() (lat, lon float64) {
	return centreLat + p.Y/metresPerDegLat, centreLon + p.X/metresPerDegLon
}

func (p xy) add(q xy) xy         { return xy{p.X + q.X, p.Y + q.Y} }
func (p xy) sub(q xy) xy         { return xy{p.X - q.X, p.Y - q.Y} }
func (p xy) scale(f float64) xy  { return xy{p.X * f, p.Y * f} }
func (p xy) dot(q xy) float64    { return p.X*q.X + p.Y*q.Y }
func (p xy) norm() float64       { return math.Hypot(p.X, p.Y) }
func dist(a, b xy) float64       { return b.sub(a).norm() }
func lerp(a, b xy, f float64) xy { return a.add(b.sub(a).scale(f)) }
func inBox(lat, lon float64) bool {
	return lat >= boxMinLat && lat <= boxMaxLat && lon >= boxMinLon && lon <= boxMaxLon
}
func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// bearing returns the direction from a to b in degrees clockwise from north,
// in [0, 360).
func bearing(a, b xy) float64 {
	d := math.Atan2(b.X-a.X, b.Y-a.Y) * 180 / math.Pi
	if d < 0 {
		d += 360
	}
	if d >= 360 {
		d -= 360
	}
	return d
}

// unitFromBearing returns the unit vector pointing deg clockwise from north.
func unitFromBearing(deg float64) xy {
	r := deg * math.Pi / 180
	return xy{math.Sin(r), math.Cos(r)}
}

// smoothstep rises from 0 at a to 1 at b (Hermite), for a < b.
func smoothstep(a, b, x float64) float64 {
	t := clamp((x-a)/(b-a), 0, 1)
	return t * t * (3 - 2*t)
}
