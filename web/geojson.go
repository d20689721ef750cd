package web

import (
	"net/url"

	"github.com/paulmach/orb"
)

// fc is a GeoJSON FeatureCollection under construction. (orb's geojson
// package would pull a BSON driver into the binary for four geometry
// types; these few lines write them.)
type fc struct {
	Type     string     `json:"type"`
	Features []*feature `json:"features"`
}

type feature struct {
	Type       string         `json:"type"`
	Geometry   geometry       `json:"geometry"`
	Properties map[string]any `json:"properties"`
}

type geometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

func newFC() *fc { return &fc{Type: "FeatureCollection", Features: []*feature{}} }

// add appends a feature of g with props; geometries other than points,
// lines and polygons are left out.
func (c *fc) add(g orb.Geometry, props map[string]any) {
	var geom geometry
	switch g := g.(type) {
	case orb.Point:
		geom = geometry{"Point", [2]float64(g)}
	case orb.LineString:
		geom = geometry{"LineString", points(g)}
	case orb.Polygon:
		geom = geometry{"Polygon", rings(g)}
	case orb.MultiPolygon:
		ps := make([][][][2]float64, len(g))
		for i, p := range g {
			ps[i] = rings(p)
		}
		geom = geometry{"MultiPolygon", ps}
	default:
		return
	}
	if props == nil {
		props = map[string]any{}
	}
	c.Features = append(c.Features, &feature{Type: "Feature", Geometry: geom, Properties: props})
}

func points(ps []orb.Point) [][2]float64 {
	out := make([][2]float64, len(ps))
	for i, p := range ps {
		out[i] = [2]float64{round6(p[0]), round6(p[1])}
	}
	return out
}

func rings(p orb.Polygon) [][][2]float64 {
	out := make([][][2]float64, len(p))
	for i, r := range p {
		out[i] = points(r)
	}
	return out
}

func urlPathEscape(s string) string { return url.PathEscape(s) }
