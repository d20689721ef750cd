package simulators

import (
	"math"
	"reflect"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

func TestProjectionMatchesGreatCircle(t *testing.T) {
	pts := [][2]float64{{36.665, 119.094}, {36.753, 119.226}, {36.71, 119.16}, {36.70, 119.20}}
	for _, a := range pts {
		for _, b := range pts {
			want := geo.Distance(orb.Point{a[1], a[0]}, orb.Point{b[1], b[0]})
			got := dist(toXY(a[0], a[1]), toXY(b[0], b[1]))
			if math.Abs(got-want) > 0.001*want+0.01 {
				t.Errorf("%v→%v: projected %.1f m, great circle %.1f m", a, b, got, want)
			}
		}
	}
	lat, lon := toXY(36.7, 119.2).latLon()
	if math.Abs(lat-36.7) > 1e-12 || math.Abs(lon-119.2) > 1e-12 {
		t.Errorf("round trip %v %v", lat, lon)
	}
}

func TestWorldSitesAndRoutes(t *testing.T) {
	w := mustWorld()
	if len(w.construction) != 12 || len(w.disposal) != 4 {
		t.Fatalf("%d construction and %d disposal sites", len(w.construction), len(w.disposal))
	}
	ids := map[string]bool{}
	for _, s := range Sites() {
		if ids[s.ID] || !inBox(s.Lat, s.Lon) || s.RadiusM < 50 {
			t.Errorf("site %+v duplicate or outside the city", s)
		}
		ids[s.ID] = true
	}
	for c, cs := range w.construction {
		for d, ds := range w.disposal {
			for _, r := range []*route{w.out[c][d], w.back[c][d]} {
				from, to := cs, ds
				if r == w.back[c][d] {
					from, to = ds, cs
				}
				if r.From != from.ID || r.To != to.ID || r.pts[0] != from.p || r.pts[len(r.pts)-1] != to.p {
					t.Fatalf("route %s→%s does not join its sites", r.From, r.To)
				}
				// The route follows road edges, through the sites' gates.
				path := w.net.shortestPath(from.node, to.node)
				for i := 1; i < len(path); i++ {
					if _, ok := w.net.edge(path[i-1], path[i]); !ok {
						t.Fatalf("route %s→%s jumps between nodes %d and %d", r.From, r.To, path[i-1], path[i])
					}
				}
				if path[1] != from.gate || path[len(path)-2] != to.gate {
					t.Fatalf("route %s→%s does not use the site gates", r.From, r.To)
				}
				straight := dist(from.p, to.p)
				if r.total < straight || r.total > 2*straight+1000 {
					t.Errorf("route %s→%s is %.0f m for %.0f m straight", r.From, r.To, r.total, straight)
				}
				for _, p := range r.pts {
					if lat, lon := p.latLon(); !inBox(lat, lon) {
						t.Errorf("route %s→%s leaves the city at %v", r.From, r.To, p)
					}
				}
				if r.limit[0] != 0 || r.limit[len(r.limit)-1] != 0 {
					t.Errorf("route %s→%s does not stop at its ends", r.From, r.To)
				}
			}
		}
	}
}

func TestRouteAt(t *testing.T) {
	r := mustWorld().out[0][0]
	for _, s := range []float64{-5, 0, 1, r.cum[1], r.cum[1] + 0.5, r.total / 2, r.total - 1, r.total, r.total + 5} {
		p, k := r.at(s)
		if k < 1 || k >= len(r.pts) {
			t.Fatalf("at(%v): segment %d", s, k)
		}
		// The point is on segment k at the right distance from its start.
		want := clamp(s, 0, r.total) - r.cum[k-1]
		if got := dist(r.pts[k-1], p); math.Abs(got-want) > 1e-6 {
			t.Errorf("at(%v) = %v on segment %d: %.3f m from its start, want %.3f", s, p, k, got, want)
		}
	}
}

func TestPermitForIsDeterministic(t *testing.T) {
	a, b := PermitFor(7, 3), PermitFor(7, 3)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("PermitFor differs between calls")
	}
	sites := map[string]Site{}
	for _, s := range Sites() {
		sites[s.ID] = s
	}
	start, end := a.Route[0], a.Route[len(a.Route)-1]
	if s := sites[a.Site]; s.Disposal || math.Abs(start[0]-s.Lon) > 1e-9 || math.Abs(start[1]-s.Lat) > 1e-9 {
		t.Errorf("permit %+v does not start at its construction site %+v", a, s)
	}
	if s := sites[a.Disposal]; !s.Disposal || math.Abs(end[0]-s.Lon) > 1e-9 || math.Abs(end[1]-s.Lat) > 1e-9 {
		t.Errorf("permit does not end at its disposal site %+v", s)
	}
	if len(a.Roads) < 3 {
		t.Errorf("permit roads %v", a.Roads)
	}
	// Permits spread over sites: the 100 first trucks use most of them.
	used := map[string]bool{}
	for i := range 100 {
		p := PermitFor(7, i)
		used[p.Site+p.Disposal] = true
	}
	if len(used) < 20 {
		t.Errorf("only %d site pairs in 100 permits", len(used))
	}
	if len(Roads()) != len(ewStreets)+len(nsRoads) {
		t.Errorf("Roads() = %d", len(Roads()))
	}
}
