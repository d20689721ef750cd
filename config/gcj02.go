package config

import (
	"math"

	"github.com/paulmach/orb"
)

// GCJ-02 is the obfuscated datum every map licensed in China (AutoNavi,
// Tencent, and Baidu before its own BD-09 step) draws in: WGS-84 shifted by
// a smooth, non-linear offset of a few hundred metres. The forward
// transform is public (eviltransform, coordtransform); it has no closed
// inverse, so GCJ02ToWGS84 iterates it.

const (
	gcjA  = 6378245.0              // Krasovsky 1940 semi-major axis, as the transform uses it
	gcjEE = 0.00669342162296594323 // its first eccentricity squared
)

// GCJ02ToWGS84 converts a GCJ-02 position (a coordinate read off a Chinese
// web map) to WGS-84, to better than 1e-7° (about 1 cm). Positions outside
// mainland China's bounding box are returned unchanged, as GCJ-02 leaves
// them unshifted.
func GCJ02ToWGS84(lon, lat float64) (float64, float64) {
	if outOfChina(lon, lat) {
		return lon, lat
	}
	wLon, wLat := lon, lat
	for range 30 {
		gLon, gLat := wgs84ToGCJ02(wLon, wLat)
		dLon, dLat := gLon-lon, gLat-lat
		wLon, wLat = wLon-dLon, wLat-dLat
		if math.Abs(dLon) < 1e-8 && math.Abs(dLat) < 1e-8 {
			break
		}
	}
	return wLon, wLat
}

// wgs84ToGCJ02 is the forward GCJ-02 transform.
func wgs84ToGCJ02(lon, lat float64) (float64, float64) {
	if outOfChina(lon, lat) {
		return lon, lat
	}
	x, y := lon-105, lat-35
	dLat := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x))
	dLat += (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3
	dLat += (20*math.Sin(y*math.Pi) + 40*math.Sin(y/3*math.Pi)) * 2 / 3
	dLat += (160*math.Sin(y/12*math.Pi) + 320*math.Sin(y*math.Pi/30)) * 2 / 3
	dLon := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x))
	dLon += (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3
	dLon += (20*math.Sin(x*math.Pi) + 40*math.Sin(x/3*math.Pi)) * 2 / 3
	dLon += (150*math.Sin(x/12*math.Pi) + 300*math.Sin(x/30*math.Pi)) * 2 / 3

	radLat := lat / 180 * math.Pi
	magic := math.Sin(radLat)
	magic = 1 - gcjEE*magic*magic
	sqrtMagic := math.Sqrt(magic)
	dLat = (dLat * 180) / ((gcjA * (1 - gcjEE)) / (magic * sqrtMagic) * math.Pi)
	dLon = (dLon * 180) / (gcjA / sqrtMagic * math.Cos(radLat) * math.Pi)
	return lon + dLon, lat + dLat
}

// outOfChina reports whether a position lies outside the box GCJ-02 shifts.
func outOfChina(lon, lat float64) bool {
	return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271
}

// gcjToWGSMulti converts every position of mp in place.
func gcjToWGSMulti(mp orb.MultiPolygon) {
	for _, p := range mp {
		for _, r := range p {
			for i := range r {
				r[i][0], r[i][1] = GCJ02ToWGS84(r[i][0], r[i][1])
			}
		}
	}
}

// gcjToWGSLine converts every position of ls in place.
func gcjToWGSLine(ls orb.LineString) {
	for i := range ls {
		ls[i][0], ls[i][1] = GCJ02ToWGS84(ls[i][0], ls[i][1])
	}
}
