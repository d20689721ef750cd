package simulators

import (
	"fmt"
	"math"
)

// The synthetic road grid: main streets of Weifang at approximate positions
// (real names, surveyed positions they are not). E–W streets (街) south to
// north, N–S roads (路) west to east, about 1.1–1.2 km apart, covering
// ~12 × 10 km around the centre.
var (
	ewStreets = []struct {
		name string
		lat  float64
	}{
		{"玉清街", 36.665}, {"宝通街", 36.676}, {"樱前街", 36.687}, {"健康街", 36.698},
		{"胜利街", 36.709}, {"东风街", 36.720}, {"福寿街", 36.731}, {"北宫街", 36.742},
		{"北环路", 36.753},
	}
	nsRoads = []struct {
		name string
		lon  float64
	}{
		{"西环路", 119.094}, {"月河路", 119.106}, {"四平路", 119.118}, {"潍州路", 119.130},
		{"和平路", 119.142}, {"向阳路", 119.154}, {"新华路", 119.166}, {"虞河路", 119.178},
		{"北海路", 119.190}, {"鸢飞路", 119.202}, {"东方路", 119.214}, {"金马路", 119.226},
	}
)

// Routing preference: night trucks keep to the ring roads and avoid the old
// town.
const (
	ringFactor = 0.8
	coreFactor = 1.3
)

// siteSpec places a site beside one grid segment: on E–W street line (ew) or
// N–S road line, between cross lines from and from+1, at fraction frac,
// offset metres to side +1 (north/east) or -1 (south/west).
type siteSpec struct {
	id, name string
	disposal bool
	ew       bool
	line     int
	from     int
	frac     float64
	side     float64
	noWash   bool // a construction site without a wash area
}

// The 12 construction sites (工地) sit mostly in the outer districts; the 4
// disposal sites (消纳场) just outside the ring roads.
var siteSpecs = []siteSpec{
	{id: "CS01", ew: true, line: 7, from: 2, frac: 0.5, side: 1},
	{id: "CS02", ew: true, line: 7, from: 8, frac: 0.4, side: -1},
	{id: "CS03", ew: true, line: 1, from: 1, frac: 0.6, side: -1},
	{id: "CS04", ew: true, line: 1, from: 5, frac: 0.5, side: 1},
	{id: "CS05", ew: true, line: 1, from: 9, frac: 0.5, side: -1, noWash: true},
	{id: "CS06", ew: false, line: 1, from: 3, frac: 0.5, side: -1},
	{id: "CS07", ew: false, line: 1, from: 6, frac: 0.4, side: 1},
	{id: "CS08", ew: false, line: 10, from: 2, frac: 0.5, side: 1},
	{id: "CS09", ew: false, line: 10, from: 5, frac: 0.6, side: -1},
	{id: "CS10", ew: true, line: 5, from: 3, frac: 0.5, side: 1},
	{id: "CS11", ew: true, line: 3, from: 8, frac: 0.5, side: -1},
	{id: "CS12", ew: false, line: 6, from: 6, frac: 0.5, side: 1, noWash: true},
	{id: "DS1", name: "西北消纳场", disposal: true, ew: true, line: 8, from: 0, frac: 0.5, side: 1},
	{id: "DS2", name: "东北消纳场", disposal: true, ew: false, line: 11, from: 7, frac: 0.5, side: 1},
	{id: "DS3", name: "东南消纳场", disposal: true, ew: true, line: 0, from: 10, frac: 0.5, side: -1},
	{id: "DS4", name: "西南消纳场", disposal: true, ew: false, line: 0, from: 0, frac: 0.5, side: -1},
}

// Site geometry, metres.
const (
	constructionOffset = 120 // site centre from the road
	disposalOffset     = 150
	constructionRadius = 100 // trucks park within this of the centre
	disposalRadius     = 120
)

// A construction site's wash area (洗车台) is a rectangle across its access
// road, from washNearM to washFarM along the road from the site's centre
// towards its gate and washHalfM either side of it: far from where trucks
// park (within 10 m of the centre) and wide, so that GPS noise (3–5 m)
// neither puts a parked truck in it nor a washing one out of it. A
// loaded truck leaving stops washStopM along the road to wash. All but two
// construction sites (CS05, CS12) have one.
const (
	washNearM = 35
	washFarM  = 95
	washHalfM = 30
	washStopM = 65
)

// world is the fixed synthetic city: road graph, sites and the routes
// between every construction site and every disposal site.
type world struct {
	net          roadNet
	construction []worldSite
	disposal     []worldSite
	out          [][]*route // out[c][d]: construction c → disposal d
	back         [][]*route // back[c][d]: disposal d → construction c
}

type worldSite struct {
	Site
	p    xy
	node int
	gate int
	wash []xy // the wash area's corners, counterclockwise; nil = none
}

// newWorld builds the city. It is deterministic and independent of any seed.
func newWorld() (*world, error) {
	w := &world{}
	n := &w.net
	nEW, nNS := len(ewStreets), len(nsRoads)
	grid := func(i, j int) int { return i*nNS + j }
	for i, s := range ewStreets {
		for j, r := range nsRoads {
			corner := (i == 0 || i == nEW-1) && (j == 0 || j == nNS-1)
			n.addNode(toXY(s.lat, r.lon), s.name+"/"+r.name, !corner)
		}
	}
	factor := func(ew bool, line, a int) float64 {
		// a is the cross index of the segment's start.
		last := nNS - 1
		if !ew {
			last = nEW - 1
		}
		if line == 0 || line == last {
			return ringFactor
		}
		inCore := func(i, j int) bool { return i >= 3 && i <= 5 && j >= 4 && j <= 7 }
		if ew && inCore(line, a) && inCore(line, a+1) || !ew && inCore(a, line) && inCore(a+1, line) {
			return coreFactor
		}
		return 1
	}
	for i := range nEW {
		for j := range nNS {
			if j+1 < nNS {
				n.addEdge(grid(i, j), grid(i, j+1), ewStreets[i].name, factor(true, i, j))
			}
			if i+1 < nEW {
				n.addEdge(grid(i, j), grid(i+1, j), nsRoads[j].name, factor(false, j, i))
			}
		}
	}
	for _, sp := range siteSpecs {
		var a, b int
		var lineName, crossA, crossB string
		var normal xy
		if sp.ew {
			a, b = grid(sp.line, sp.from), grid(sp.line, sp.from+1)
			lineName, crossA, crossB = ewStreets[sp.line].name, nsRoads[sp.from].name, nsRoads[sp.from+1].name
			normal = xy{0, sp.side}
		} else {
			a, b = grid(sp.from, sp.line), grid(sp.from+1, sp.line)
			lineName, crossA, crossB = nsRoads[sp.line].name, ewStreets[sp.from].name, ewStreets[sp.from+1].name
			normal = xy{sp.side, 0}
		}
		e, ok := n.edge(a, b)
		if !ok {
			return nil, fmt.Errorf("site %s: no road segment %d–%d (already split?)", sp.id, a, b)
		}
		name := sp.name
		if name == "" {
			name = lineName + "(" + crossA + "–" + crossB + ")工地"
		}
		off, radius := float64(constructionOffset), float64(constructionRadius)
		if sp.disposal {
			off, radius = disposalOffset, disposalRadius
		}
		gp := lerp(n.nodes[a].P, n.nodes[b].P, sp.frac)
		sitePos := gp.add(normal.scale(off))
		f := e.Cost / e.Len
		n.removeEdge(a, b)
		g := n.addNode(gp, name+"出入口", false)
		n.addEdge(a, g, e.Road, f)
		n.addEdge(g, b, e.Road, f)
		s := n.addNode(sitePos, name, false)
		n.addEdge(g, s, name+"便道", 1)
		lat, lon := sitePos.latLon()
		ws := worldSite{Site: Site{ID: sp.id, Name: name, Disposal: sp.disposal, Lat: lat, Lon: lon, RadiusM: radius},
			p: sitePos, node: s, gate: g}
		if !sp.disposal && !sp.noWash {
			ws.wash = washArea(sitePos, normal.scale(-1))
		}
		if sp.disposal {
			w.disposal = append(w.disposal, ws)
		} else {
			w.construction = append(w.construction, ws)
		}
	}
	w.out = make([][]*route, len(w.construction))
	w.back = make([][]*route, len(w.construction))
	for c, cs := range w.construction {
		w.out[c] = make([]*route, len(w.disposal))
		w.back[c] = make([]*route, len(w.disposal))
		for d, ds := range w.disposal {
			var err error
			if w.out[c][d], err = w.route(cs, ds); err != nil {
				return nil, err
			}
			if w.back[c][d], err = w.route(ds, cs); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}

// washArea is the wash area of a site centred at p whose access road
// leaves in direction u (a unit vector): counterclockwise corners.
func washArea(p, u xy) []xy {
	n := xy{-u.Y, u.X}
	at := func(along, across float64) xy { return p.add(u.scale(along)).add(n.scale(across)) }
	return []xy{at(washNearM, -washHalfM), at(washFarM, -washHalfM), at(washFarM, washHalfM), at(washNearM, washHalfM)}
}

// route builds the drivable route between two sites.
func (w *world) route(from, to worldSite) (*route, error) {
	path := w.net.shortestPath(from.node, to.node)
	if path == nil {
		return nil, fmt.Errorf("no road from %s to %s", from.ID, to.ID)
	}
	r := &route{From: from.ID, To: to.ID}
	for i, v := range path {
		nd := w.net.nodes[v]
		r.pts = append(r.pts, nd.P)
		if i == 0 {
			r.cum = append(r.cum, 0)
		} else {
			r.cum = append(r.cum, r.cum[i-1]+dist(r.pts[i-1], nd.P))
		}
		lim := math.Inf(1)
		switch {
		case i == 0 || i == len(path)-1:
			lim = 0
		case v == from.gate || v == to.gate:
			lim = gateSpeed
		default:
			in := bearing(w.net.nodes[path[i-1]].P, nd.P)
			out := bearing(nd.P, w.net.nodes[path[i+1]].P)
			if turn := math.Abs(math.Mod(out-in+540, 360) - 180); turn > 30 {
				lim = turnSpeed
			}
		}
		r.limit = append(r.limit, lim)
		r.light = append(r.light, nd.Light && i > 0 && i < len(path)-1)
		if i > 0 {
			e, _ := w.net.edge(path[i-1], v)
			if len(r.Roads) == 0 || r.Roads[len(r.Roads)-1] != e.Road {
				r.Roads = append(r.Roads, e.Road)
			}
		}
	}
	r.total = r.cum[len(r.cum)-1]
	return r, nil
}

// route is a drivable polyline from one site to another.
type route struct {
	From, To string   // site ids
	Roads    []string // road names in driving order
	pts      []xy
	cum      []float64 // distance from the start to pts[i], metres
	limit    []float64 // speed limit passing pts[i], m/s; 0 = stop, +Inf = none
	light    []bool    // pts[i] is a signalised intersection
	total    float64
}

// at returns the point s metres along the route and the index of the
// segment it is on (pts[k-1] → pts[k], k ≥ 1).
func (r *route) at(s float64) (xy, int) {
	if s <= 0 {
		return r.pts[0], 1
	}
	if s >= r.total {
		return r.pts[len(r.pts)-1], len(r.pts) - 1
	}
	lo, hi := 1, len(r.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if r.cum[mid] < s {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	k := lo
	seg := r.cum[k] - r.cum[k-1]
	if seg <= 0 {
		return r.pts[k], k
	}
	return lerp(r.pts[k-1], r.pts[k], (s-r.cum[k-1])/seg), k
}
