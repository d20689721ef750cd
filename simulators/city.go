package simulators

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
)

// SiteMarginM is how far a site's fence in DemoCity lies outside the circle
// its trucks park and turn in (Site.RadiusM), in metres. GPS noise (3–5 m,
// rarely 20 m) never puts a truck that is inside a site outside its fence,
// and a truck on the road beside a site is inside the fence only where the
// road really passes within RadiusM+SiteMarginM of the site's centre.
const SiteMarginM = 60

// siteFenceSides is how many sides a site's fence polygon has.
const siteFenceSides = 16

// The demo city's permits are valid for the whole of 2026.
var demoValidFrom, demoValidTo = config.Date{Year: 2026, Month: 1, Day: 1}, config.Date{Year: 2026, Month: 12, Day: 31}

// demoCompanies are the demo city's transport companies, with their
// compliance managers (fictitious people and numbers).
var demoCompanies = []struct{ name, contact string }{
	{"潍坊鸢都运输有限公司", "张伟"}, {"潍坊白浪河运输有限公司", "王芳"}, {"潍坊虞河运输有限公司", "李强"},
	{"潍坊富华运输有限公司", "刘洋"}, {"潍坊恒安运输有限公司", "陈静"}, {"潍坊顺达运输有限公司", "杨磊"},
	{"潍坊通宇运输有限公司", "赵敏"}, {"潍坊宏运运输有限公司", "黄涛"}, {"潍坊安泰运输有限公司", "周丽"},
	{"潍坊金马运输有限公司", "吴军"}, {"潍坊北海运输有限公司", "徐娜"}, {"潍坊渤海运输有限公司", "孙鹏"},
}

// plateLetters are the letters a plate's serial may start with (I and O are
// not used on Chinese plates).
const plateLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ"

// Plate returns the licence plate of the i-th demo truck (0-based):
// "鲁G·A0001" … "鲁G·A9999", "鲁G·B0001" …
func Plate(i int) string {
	return fmt.Sprintf("鲁G·%c%04d", plateLetters[(i/9999)%len(plateLetters)], i%9999+1)
}

// TruckDevice, RainDevice and DepthDevice return the device id of the i-th
// (0-based) truck, rain gauge and depth point of the demo registry
// (deploy/demo/registry.yaml), which Run takes in this order.
func TruckDevice(i int) string { return fmt.Sprintf("%s%05d", TruckPrefix, i+1) }

// RainDevice: see TruckDevice.
func RainDevice(i int) string { return fmt.Sprintf("%s%03d", RainPrefix, i+1) }

// DepthDevice: see TruckDevice.
func DepthDevice(i int) string { return fmt.Sprintf("%s%03d", DepthPrefix, i+1) }

// RouteID returns the id of the demo city's route from one site to
// another, e.g. "R-CS03-DS2".
func RouteID(from, to string) string { return "R-" + from + "-" + to }

// CompanyID returns the id of the company the i-th demo truck belongs to.
func CompanyID(i int) string { return fmt.Sprintf("C%02d", i%len(demoCompanies)+1) }

// DemoCity builds, in code, the city model (config.City) of what Run plays
// with that many trucks, rain gauges and depth points under seed, taking
// its devices from the demo registry (TruckDevice, RainDevice,
// DepthDevice):
//
//   - 12 transport companies, truck i belonging to CompanyID(i), each with
//     one compliance manager;
//   - truck i with plate Plate(i), device TruckDevice(i) and rated load
//     RatedLoadKg(seed, i), and one permit
//     valid for 2026, any hour ("00:00-24:00": the demo drives whenever it
//     is run), from its construction site to its disposal site (PermitFor)
//     along the routes there and back;
//   - every site as a 16-gon fence of radius RadiusM+SiteMarginM around its
//     centre, every construction site but CS05 and CS12 with a wash area
//     (WashArea) across its access road, and the routes between every construction and every disposal
//     site, both ways (RouteID);
//   - two example zones: a school (no muck trucks 07:00-08:30 and
//     16:30-17:30) near the centre and a residential street at 30 km/h;
//   - every rain gauge and depth point where Run places it, named after the
//     nearest intersection.
//
// Rules are left zero and Sites and Routes are filled in memory, with no
// files named: callers call c.Validate, which fills the defaults, and
// WriteCity names the files it writes. Coordinates are WGS-84, rounded to
// 1e-7° (1 cm) so that writing and reading them back is exact.
func DemoCity(trucks, rainGauges, depthPoints int, seed int64) *config.City {
	w := mustWorld()
	c := &config.City{Name: "潍坊市", RegionCode: "370700", TimeZone: "Asia/Shanghai", CRS: "wgs84"}
	for i, co := range demoCompanies {
		c.Companies = append(c.Companies, config.Company{ID: CompanyID(i), Name: co.name,
			Contacts: []config.Contact{{Name: co.contact, Phone: fmt.Sprintf("+861990000%04d", i+1), Role: "合规经理"}}})
	}
	for i := range trucks {
		p := PermitFor(seed, i)
		plate := Plate(i)
		c.Trucks = append(c.Trucks, config.Truck{Plate: plate, Company: CompanyID(i), Devices: []string{TruckDevice(i)},
			RatedLoadKg: RatedLoadKg(seed, i)})
		c.Permits = append(c.Permits, config.Permit{ID: fmt.Sprintf("ZY2026-%05d", i+1), Truck: plate,
			ValidFrom: demoValidFrom, ValidTo: demoValidTo, Windows: []config.Window{{Start: 0, End: 24 * 3600}},
			Origins: []string{p.Site}, Disposal: []string{p.Disposal},
			Routes: []string{RouteID(p.Site, p.Disposal), RouteID(p.Disposal, p.Site)}})
	}
	for _, ss := range [][]worldSite{w.construction, w.disposal} {
		for _, s := range ss {
			kind := config.SiteConstruction
			if s.Disposal {
				kind = config.SiteDisposal
			}
			site := config.Site{ID: s.ID, Name: s.Name, Kind: kind,
				Area: orb.MultiPolygon{fence(s.p, s.RadiusM+SiteMarginM)}}
			if s.wash != nil {
				site.WashArea = orb.MultiPolygon{polygon(s.wash)}
			}
			c.Sites = append(c.Sites, site)
		}
	}
	for ci := range w.construction {
		for di := range w.disposal {
			for _, r := range []*route{w.out[ci][di], w.back[ci][di]} {
				c.Routes = append(c.Routes, config.Route{ID: RouteID(r.From, r.To), Name: routeName(w, r), Path: lineOf(r.pts)})
			}
		}
	}
	c.Zones = demoZones()
	for i, g := range newRainGauges(rainGauges, seed, nil, time.Time{}, time.Minute) {
		lat, lon := g.p.latLon()
		c.Gauges = append(c.Gauges, config.Gauge{Device: RainDevice(i), Kind: config.GaugeRain,
			Name: fmt.Sprintf("%s雨量站%03d", nearestCrossing(w, g.p), i+1), Lat: round7(lat), Lon: round7(lon)})
	}
	for i, d := range newDepthPoints(depthPoints, seed, w, nil, time.Time{}, time.Minute) {
		lat, lon := d.p.latLon()
		kind := "积水点"
		if d.underpass {
			kind = "下穿立交"
		}
		c.Gauges = append(c.Gauges, config.Gauge{Device: DepthDevice(i), Kind: config.GaugeDepth,
			Name: nearestCrossing(w, d.p) + kind, Lat: round7(lat), Lon: round7(lon)})
	}
	return c
}

// RatedLoadKg returns the rated load (核定载质量) of the truck-th simulated
// truck under seed: 20,000–31,000 kg in steps of 500, as Chinese muck
// trucks (8×4 dump trucks) are rated. A truck loads 55–95 % of it, and now
// and then, overloaded, 120–145 %.
func RatedLoadKg(seed int64, truck int) float64 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x72617465<<32|uint64(truck)))
	return 20000 + 500*float64(rng.IntN(23))
}

// demoZones are the demo city's example zones.
func demoZones() []config.Zone {
	box := func(lon0, lat0, lon1, lat1 float64) config.GeoJSONGeometry {
		return config.GeoJSONGeometry{Area: orb.MultiPolygon{{{{lon0, lat0}, {lon1, lat0}, {lon1, lat1}, {lon0, lat1}, {lon0, lat0}}}}}
	}
	return []config.Zone{
		{ID: "Z-SCHOOL-01", Name: "育才小学周边", Severity: config.SeverityWarning,
			// Around 胜利街/向阳路, in the old town.
			Area:      box(119.150, 36.706, 119.158, 36.712),
			Windows:   []config.Window{{Start: 7 * 3600, End: 8*3600 + 1800}, {Start: 16*3600 + 1800, End: 17*3600 + 1800}},
			Condition: config.ZoneCondition{AnyTruck: true}},
		{ID: "Z-RES-01", Name: "北宫街金宝居住区", Severity: config.SeverityMinor,
			// 北宫街 between 虞河路 and 北海路, a street many trucks take
			// to and from 东北消纳场; its edges cross the street ~180 m
			// from the intersections.
			Area:      box(119.180, 36.739, 119.188, 36.745),
			Condition: config.ZoneCondition{MaxSpeedKmh: 30}},
	}
}

// fence is a regular polygon of radius r metres around p, counterclockwise
// from due east, closed, in [lon, lat].
func fence(p xy, r float64) orb.Polygon {
	ring := make(orb.Ring, 0, siteFenceSides+1)
	for k := range siteFenceSides {
		a := 2 * math.Pi * float64(k) / siteFenceSides
		lat, lon := p.add(xy{r * math.Cos(a), r * math.Sin(a)}).latLon()
		ring = append(ring, orb.Point{round7(lon), round7(lat)})
	}
	return orb.Polygon{append(ring, ring[0])}
}

// polygon is the closed polygon through pts, in [lon, lat].
func polygon(pts []xy) orb.Polygon {
	ring := make(orb.Ring, 0, len(pts)+1)
	for _, p := range pts {
		lat, lon := p.latLon()
		ring = append(ring, orb.Point{round7(lon), round7(lat)})
	}
	return orb.Polygon{append(ring, ring[0])}
}

// lineOf converts a polyline to [lon, lat].
func lineOf(pts []xy) orb.LineString {
	ls := make(orb.LineString, len(pts))
	for i, p := range pts {
		lat, lon := p.latLon()
		ls[i] = orb.Point{round7(lon), round7(lat)}
	}
	return ls
}

// routeName names a route by its ends and its roads.
func routeName(w *world, r *route) string {
	name := func(id string) string {
		for _, ss := range [][]worldSite{w.construction, w.disposal} {
			for _, s := range ss {
				if s.ID == id {
					return s.Name
				}
			}
		}
		return id
	}
	var roads []string
	for _, rd := range r.Roads {
		if !strings.HasSuffix(rd, "便道") { // a site's own access road
			roads = append(roads, rd)
		}
	}
	return name(r.From) + "→" + name(r.To) + "(经" + strings.Join(roads, "、") + ")"
}

// nearestCrossing names the grid intersection nearest to p, e.g.
// "胜利街/和平路".
func nearestCrossing(w *world, p xy) string {
	best, name := math.Inf(1), ""
	for i := range len(ewStreets) * len(nsRoads) {
		if d := dist(p, w.net.nodes[i].P); d < best {
			best, name = d, w.net.nodes[i].Name
		}
	}
	return name
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }
