// Package geo is the geometry index of the rules engine: a local metric
// plane for a city, point-in-polygon over site and zone polygons, and
// point-to-polyline distance over route corridors.
//
// Everything here is built once per city configuration and is immutable
// afterwards, so any number of goroutines may query an index at once. The
// query methods do not allocate (Containing appends only when dst has no
// room left).
//
// Coordinates come in as WGS-84 [lon, lat] orb geometries and are projected
// once onto a Plane; queries take projected points (XY) and answer in metres.
package geo

import "math"

// WGS-84 ellipsoid.
const (
	wgs84A  = 6378137.0
	wgs84F  = 1 / 298.257223563
	wgs84E2 = wgs84F * (2 - wgs84F)
	deg     = math.Pi / 180
)

// XY is a point of a Plane: X metres east and Y metres north of its origin,
// measured at the origin's latitude.
type XY struct{ X, Y float64 }

// Plane is a local metric projection for a city: equirectangular about an
// origin, x east, y north, in metres, with the WGS-84 ellipsoid's metres per
// degree of longitude and latitude at the origin.
//
// Project is affine in (lon, lat), so a segment that is straight in lon/lat,
// as RFC 7946 defines GeoJSON edges, stays straight, and point-in-polygon
// answers in the plane are exactly those in lon/lat. The price is scale: east
// of the origin's latitude a metre of X is cos(lat)/cos(lat0) true metres,
// an error of about tan(lat0)·Δlat (0.1 % at 8.6 km north or south of the
// origin at 36.7° N, 0.6 % at 50 km), and a north-south error under 0.01 %
// within 50 km. Plane.Distance undoes it with the ellipsoid's true scales at
// the mean latitude of its two points, which keeps it within 0.001 % of the
// geodesic for points within 50 km of the origin. Lines and
// Polygons.Distance take the true scales at the query point, which is good
// to about tan(lat)·d/4R: 0.003 % per kilometre of distance at 36.7° N, so
// 3 cm at 1000 m.
//
// The zero Plane is not usable; build one with NewPlane. A Plane is a value
// and safe to copy and share.
type Plane struct {
	lon0, lat0 float64
	kx, ky     float64 // metres per degree of longitude and latitude at lat0
	ikx, iky   float64 // their inverses
	sin0, cos0 float64 // of lat0
	w0         float64 // 1 - e² sin² lat0
}

// NewPlane returns the plane with origin (lon0, lat0), in degrees. Put the
// origin at the middle of the city. lat0 is clamped to ±89°; a city must not
// straddle the antimeridian.
func NewPlane(lon0, lat0 float64) Plane {
	lat0 = max(-89, min(89, lat0))
	s, c := math.Sincos(lat0 * deg)
	w := 1 - wgs84E2*s*s
	kx := deg * wgs84A * c / math.Sqrt(w)
	ky := deg * wgs84A * (1 - wgs84E2) / (w * math.Sqrt(w))
	return Plane{lon0: lon0, lat0: lat0, kx: kx, ky: ky, ikx: 1 / kx, iky: 1 / ky, sin0: s, cos0: c, w0: w}
}

// Project returns the plane position of (lon, lat), in degrees.
func (p Plane) Project(lon, lat float64) XY {
	return XY{X: (lon - p.lon0) * p.kx, Y: (lat - p.lat0) * p.ky}
}

// Unproject is the inverse of Project: the (lon, lat), in degrees, of q.
func (p Plane) Unproject(q XY) (lon, lat float64) {
	return p.lon0 + q.X*p.ikx, p.lat0 + q.Y*p.iky
}

// Distance returns the distance in metres between a and b, with the plane's
// scale error corrected at their mean latitude: within 0.001 % of the WGS-84
// geodesic for points within 50 km of the origin and up to 20 km apart.
func (p Plane) Distance(a, b XY) float64 {
	sx, sy := p.metric((a.Y + b.Y) / 2)
	return math.Hypot((b.X-a.X)*sx, (b.Y-a.Y)*sy)
}

// metric returns the true length, in metres, of one plane unit east (sx) and
// north (sy) at plane ordinate y. Distances near a point q are computed as
// hypot(dx·sx, dy·sy) with the scales of q.
func (p Plane) metric(y float64) (sx, sy float64) {
	d := y * p.iky * deg // latitude offset from lat0, radians
	var s, c float64
	if d2 := d * d; d2 < 0.0025 { // |d| < 0.05 rad (≈ 300 km): Taylor, error < 1e-10
		sd := d * (1 - d2/6*(1-d2/20))
		cd := 1 - d2/2*(1-d2/12*(1-d2/30))
		s = p.sin0*cd + p.cos0*sd
		c = p.cos0*cd - p.sin0*sd
	} else {
		s, c = math.Sincos(p.lat0*deg + d)
	}
	t := p.w0 / (1 - wgs84E2*s*s)
	rt := math.Sqrt(t)
	sx = max(c*rt/p.cos0, 1e-9)
	sy = t * rt
	return sx, sy
}
