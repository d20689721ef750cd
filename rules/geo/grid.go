package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// gridMargin is how far, in metres, a segment is taken to reach beyond
// itself when it is assigned to grid cells. It dwarfs rounding (coordinates
// of a city are below 1e5 m, so about 1e-11 m) and onEdge, so that a point
// in a cell sees every segment within onEdge of it.
const gridMargin = 1e-3

// onEdge is the distance, in metres, within which a point counts as lying
// on a polygon's edge. A point exactly on an edge in lon/lat lands within
// about 1e-9 m of it after projection.
const onEdge = 1e-6

// seg is a segment of a polygon ring or of a polyline.
type seg struct{ a, b XY }

// segDist2 returns the squared distance from q to the segment ab, with plane
// units east scaled by sx and north by sy. It is a pure function of its
// arguments, so every caller gets the same bits for the same segment.
func segDist2(q, a, b XY, sx, sy float64) float64 {
	ax, ay := (a.X-q.X)*sx, (a.Y-q.Y)*sy
	dx, dy := (b.X-a.X)*sx, (b.Y-a.Y)*sy
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = min(1, max(0, -(ax*dx+ay*dy)/l2))
	}
	px, py := ax+t*dx, ay+t*dy
	return px*px + py*py
}

// coverSegment calls fn for every cell (cx, cy) of the grid with origin o
// and cell size c whose square, grown by gridMargin on each side, the
// segment ab touches. It may report a few more cells, never fewer; it
// reports each cell once. The work is proportional to the number of cells.
func coverSegment(a, b, o XY, c float64, fn func(cx, cy int)) {
	const m = gridMargin
	inv := 1 / c
	cx0 := int(math.Floor((min(a.X, b.X) - m - o.X) * inv))
	cx1 := int(math.Floor((max(a.X, b.X) + m - o.X) * inv))
	dx := b.X - a.X
	for cx := cx0; cx <= cx1; cx++ {
		// The part of ab in the column's slab [lo, hi] (grown by m).
		lo, hi := o.X+float64(cx)*c-m, o.X+float64(cx+1)*c+m
		ylo, yhi := min(a.Y, b.Y), max(a.Y, b.Y)
		if dx != 0 && cx0 != cx1 {
			t0 := min(1, max(0, (lo-a.X)/dx))
			t1 := min(1, max(0, (hi-a.X)/dx))
			y0, y1 := a.Y+t0*(b.Y-a.Y), a.Y+t1*(b.Y-a.Y)
			ylo, yhi = min(y0, y1), max(y0, y1)
		}
		cy0 := int(math.Floor((ylo - m - o.Y) * inv))
		cy1 := int(math.Floor((yhi + m - o.Y) * inv))
		for cy := cy0; cy <= cy1; cy++ {
			fn(cx, cy)
		}
	}
}

// finite reports whether q has finite coordinates.
func finite(q XY) bool {
	return !math.IsNaN(q.X) && !math.IsNaN(q.Y) && !math.IsInf(q.X, 0) && !math.IsInf(q.Y, 0)
}

// projectPath projects pts, dropping non-finite positions and consecutive
// repeats (compared after projection), and appends the result to dst.
func projectPath(pl Plane, pts []orb.Point, dst []XY) []XY {
	n0 := len(dst)
	for _, pt := range pts {
		q := pl.Project(pt[0], pt[1])
		if !finite(q) {
			continue
		}
		if len(dst) > n0 && dst[len(dst)-1] == q {
			continue
		}
		dst = append(dst, q)
	}
	return dst
}

// bbox is an axis-aligned box in the plane.
type bbox struct{ min, max XY }

// emptyBox is the box that extend grows from.
func emptyBox() bbox {
	return bbox{XY{math.Inf(1), math.Inf(1)}, XY{math.Inf(-1), math.Inf(-1)}}
}

// extend returns b grown to hold q.
func (b bbox) extend(q XY) bbox {
	return bbox{XY{min(b.min.X, q.X), min(b.min.Y, q.Y)}, XY{max(b.max.X, q.X), max(b.max.Y, q.Y)}}
}

// union returns the smallest box holding b and o.
func (b bbox) union(o bbox) bbox {
	return b.extend(o.min).extend(o.max)
}

// empty reports whether b holds no point.
func (b bbox) empty() bool { return !(b.min.X <= b.max.X && b.min.Y <= b.max.Y) }

// dist2 returns the squared scaled distance from q to the box (0 inside).
func (b bbox) dist2(q XY, sx, sy float64) float64 {
	dx := max(b.min.X-q.X, q.X-b.max.X, 0) * sx
	dy := max(b.min.Y-q.Y, q.Y-b.max.Y, 0) * sy
	return dx*dx + dy*dy
}
