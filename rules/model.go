package rules

import (
	"fmt"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
)

// model is a City compiled for evaluation: geometry projected and indexed,
// devices mapped to their trucks and gauges. It is immutable; a reload
// builds a new one and swaps it in between two messages.
type model struct {
	city   *config.City
	rules  config.RuleSettings
	loc    *time.Location
	plane  geo.Plane
	sites  *geo.Polygons
	site   []*config.Site
	zones  *geo.Polygons
	zone   []*config.Zone
	routes *geo.Lines
	trucks map[string]*truckInfo // by device
	plates map[string]*truckInfo // by plate
	gauges map[string]*config.Gauge
}

// truckInfo is what the rules need to know of a truck.
type truckInfo struct {
	truck   *config.Truck
	company *config.Company
	permits []permitInfo
}

// permitInfo is a permit with its ids resolved to index positions.
type permitInfo struct {
	p         *config.Permit
	routes    []int32
	allowed   []int32 // origin and disposal site indexes
	corridorM float64
}

// newModel compiles a validated city.
func newModel(c *config.City) (*model, error) {
	if c == nil {
		return nil, fmt.Errorf("rules: no city")
	}
	if c.Location == nil {
		return nil, fmt.Errorf("rules: city %q is not validated (no time zone)", c.Path())
	}
	m := &model{city: c, rules: c.Rules, loc: c.Location,
		trucks: map[string]*truckInfo{}, plates: map[string]*truckInfo{}, gauges: map[string]*config.Gauge{}}
	m.plane = geo.NewPlane(cityOrigin(c))
	siteIdx := map[string]int32{}
	areas := make([]orb.MultiPolygon, len(c.Sites))
	for i := range c.Sites {
		m.site = append(m.site, &c.Sites[i])
		areas[i] = c.Sites[i].Area
		siteIdx[c.Sites[i].ID] = int32(i)
	}
	m.sites = geo.NewPolygons(m.plane, areas, 0)
	zareas := make([]orb.MultiPolygon, len(c.Zones))
	for i := range c.Zones {
		m.zone = append(m.zone, &c.Zones[i])
		zareas[i] = c.Zones[i].Area.Area
	}
	m.zones = geo.NewPolygons(m.plane, zareas, 0)
	routeIdx := map[string]int32{}
	paths := make([]orb.LineString, len(c.Routes))
	for i := range c.Routes {
		paths[i] = c.Routes[i].Path
		routeIdx[c.Routes[i].ID] = int32(i)
	}
	m.routes = geo.NewLines(m.plane, paths, 0)
	for i := range c.Trucks {
		t := &c.Trucks[i]
		ti := &truckInfo{truck: t, company: c.Company(t.Company)}
		for _, p := range c.PermitsOf(t.Plate) {
			pi := permitInfo{p: p, corridorM: p.CorridorM}
			if pi.corridorM <= 0 {
				pi.corridorM = c.Rules.OffRoute.CorridorM
			}
			for _, id := range p.Routes {
				if k, ok := routeIdx[id]; ok {
					pi.routes = append(pi.routes, k)
				}
			}
			for _, ids := range [][]string{p.Origins, p.Disposal} {
				for _, id := range ids {
					if k, ok := siteIdx[id]; ok {
						pi.allowed = append(pi.allowed, k)
					}
				}
			}
			ti.permits = append(ti.permits, pi)
		}
		m.plates[t.Plate] = ti
		for _, d := range t.Devices {
			m.trucks[d] = ti
		}
	}
	for i := range c.Gauges {
		m.gauges[c.Gauges[i].Device] = &c.Gauges[i]
	}
	return m, nil
}

// siteIndex returns the index of the site with the id, or -1.
func (m *model) siteIndex(id string) int32 {
	for i, s := range m.site {
		if s.ID == id {
			return int32(i)
		}
	}
	return -1
}

// zoneIndex returns the index of the zone with the id, or -1.
func (m *model) zoneIndex(id string) int32 {
	for i, z := range m.zone {
		if z.ID == id {
			return int32(i)
		}
	}
	return -1
}

// cityOrigin picks the projection origin: the centre of the sites' and
// gauges' extent, or Weifang's centre for an empty city.
func cityOrigin(c *config.City) (lon, lat float64) {
	var b orb.Bound
	first := true
	add := func(p orb.Point) {
		if first {
			b, first = p.Bound(), false
		} else {
			b = b.Extend(p)
		}
	}
	for _, s := range c.Sites {
		add(s.Area.Bound().Center())
	}
	for _, r := range c.Routes {
		add(r.Path.Bound().Center())
	}
	for _, g := range c.Gauges {
		add(orb.Point{g.Lon, g.Lat})
	}
	if first {
		return 119.16, 36.71
	}
	ctr := b.Center()
	return ctr[0], ctr[1]
}
