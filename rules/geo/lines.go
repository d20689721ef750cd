package geo

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// DefaultLineCell is the finest grid cell size, in metres, NewLines uses
// when given none. A query of radius r reads the finest level whose cells
// are at least 2r wide, so up to r ≈ 64 m (corridors of most permits) it
// reads the finest level.
const DefaultLineCell = 128

const (
	lineLevels = 12 // cell sizes c, 4c, 16c, ... 4^11 c
	coordBits  = 18 // bits of a cell coordinate in a key
	idBits     = 24 // bits of a line id in a key
	multiRun   = 1 << 63
)

// Lines indexes polylines by id for distance queries.
//
// Each line is rasterised into sparse grids of cells c, 4c, 16c, ... (up to
// the level whose cells are as wide as the line); each (line, level, cell)
// maps to the runs of consecutive segments that reach the cell. A query of
// radius r reads the at most 2×2 cells of the finest level with cells at
// least 2r wide that its square meets (clipped to the line's bounding box),
// so its cost does not grow with the line's length nor, much, with r.
//
// Distances are in metres with the plane's scale corrected at the query
// point (see Plane); every method computes a segment's distance with the
// same arithmetic, so Within and Distance agree to the last bit.
//
// A Lines is immutable; any number of goroutines may query it at once.
type Lines struct {
	pl    Plane
	o     XY // grid origin
	cell  [lineLevels]float64
	inv   [lineLevels]float64
	verts []XY // of all lines; segment i is verts[i], verts[i+1]
	lines []line
	cells map[uint64]uint64 // key(id, level, cx, cy) → run, or multiRun|runs index
	runs  []uint64          // run lists of cells that hold more than one run
}

// line is one indexed polyline.
type line struct {
	v0, v1 uint32 // vertices verts[v0:v1]; no segments if v1-v0 < 2
	top    int    // coarsest level indexed
	box    bbox
}

// NewLines indexes paths: the id of paths[i] is i. Non-finite positions
// and consecutive repeats are dropped; a path with a single position is a
// point, one with none is empty (at +Inf from everything).
//
// cellM is the finest grid cell size in metres; cellM ≤ 0 picks
// DefaultLineCell. It grows if the paths spread over more than 2^18 cells.
// NewLines panics if given 2^24 paths or more.
func NewLines(pl Plane, paths []orb.LineString, cellM float64) *Lines {
	if len(paths) >= 1<<idBits {
		panic(fmt.Sprintf("geo: %d lines, more than the %d an index holds", len(paths), 1<<idBits-1))
	}
	if !(cellM > 0) || math.IsInf(cellM, 0) {
		cellM = DefaultLineCell
	}
	ls := &Lines{pl: pl, lines: make([]line, len(paths))}
	box := emptyBox()
	for id, path := range paths {
		l := &ls.lines[id]
		l.v0 = uint32(len(ls.verts))
		ls.verts = projectPath(pl, path, ls.verts)
		if len(ls.verts) == int(l.v0)+1 { // a point: one segment of length 0
			ls.verts = append(ls.verts, ls.verts[l.v0])
		}
		l.v1 = uint32(len(ls.verts))
		l.box = emptyBox()
		for _, q := range ls.verts[l.v0:l.v1] {
			l.box = l.box.extend(q)
		}
		if !l.box.empty() {
			box = box.union(l.box)
		}
	}
	if box.empty() {
		return ls
	}

	// Cell coordinates must fit in coordBits at the finest level.
	c := cellM
	for max(box.max.X-box.min.X, box.max.Y-box.min.Y)/c+4 >= 1<<coordBits {
		c *= 2
	}
	ls.o = XY{box.min.X - c, box.min.Y - c}
	for lv := range lineLevels {
		ls.cell[lv] = c * math.Pow(4, float64(lv))
		ls.inv[lv] = 1 / ls.cell[lv]
	}

	type kv struct{ k, v uint64 }
	var (
		all   []kv
		pairs []keySeg
		runs  []uint64
	)
	for id := range ls.lines {
		l := &ls.lines[id]
		if l.v1-l.v0 < 2 {
			continue
		}
		ext := max(l.box.max.X-l.box.min.X, l.box.max.Y-l.box.min.Y)
		for l.top < lineLevels-1 && ls.cell[l.top] < ext {
			l.top++
		}
		for lv := 0; lv <= l.top; lv++ {
			pairs = pairs[:0]
			for i := l.v0; i+1 < l.v1; i++ {
				coverSegment(ls.verts[i], ls.verts[i+1], ls.o, ls.cell[lv], func(cx, cy int) {
					pairs = append(pairs, keySeg{key(int32(id), lv, cx, cy), i})
				})
			}
			slices.SortStableFunc(pairs, func(a, b keySeg) int { return cmp.Compare(a.key, b.key) })
			// Compress each cell's segments into runs.
			for j := 0; j < len(pairs); {
				k := j
				runs = runs[:0]
				for k < len(pairs) && pairs[k].key == pairs[j].key {
					start := pairs[k].seg
					n := uint32(1)
					k++
					for k < len(pairs) && pairs[k].key == pairs[j].key && pairs[k].seg == start+n {
						n++
						k++
					}
					runs = append(runs, uint64(start)|uint64(n)<<32)
				}
				v := runs[0]
				if len(runs) > 1 {
					v = multiRun | uint64(len(ls.runs)) | uint64(len(runs))<<32
					ls.runs = append(ls.runs, runs...)
				}
				all = append(all, kv{pairs[j].key, v})
				j = k
			}
		}
	}
	ls.cells = make(map[uint64]uint64, len(all))
	for _, e := range all {
		ls.cells[e.k] = e.v
	}
	return ls
}

// keySeg is a segment reaching a cell, while building.
type keySeg struct {
	key uint64
	seg uint32
}

// key packs a line id, a level and cell coordinates (non-negative, below
// 2^coordBits) into a map key.
func key(id int32, lv, cx, cy int) uint64 {
	return uint64(id)<<(64-idBits) | uint64(lv)<<(2*coordBits) | uint64(cx)<<coordBits | uint64(cy)
}

// Len returns the number of ids, len(paths) as given to NewLines.
func (ls *Lines) Len() int { return len(ls.lines) }

// Within reports whether q is within r metres of line id, and the distance
// found: exact when it is at most r; when it is more than r, any value more
// than r (often +Inf), so a caller that needs the exact distance calls
// Distance. An empty line, a non-finite q and a NaN r are never within. It
// panics if id is not in [0, Len()).
func (ls *Lines) Within(id int32, q XY, r float64) (d float64, ok bool) {
	l := &ls.lines[id]
	if l.v1-l.v0 < 2 {
		return math.Inf(1), false
	}
	sx, sy := ls.pl.metric(q.Y)
	if l.box.dist2(q, sx, sy) > r*r*(1+1e-9) { // slack: the box may touch the line
		return math.Inf(1), false
	}
	rx, ry := r/sx, r/sy
	w := 2 * max(rx, ry)
	lv := 0
	for lv < l.top && ls.cell[lv] < w {
		lv++
	}
	d = math.Sqrt(ls.scan(id, l, lv, q, sx, sy, rx, ry))
	return d, d <= r
}

// Distance returns the exact distance in metres from q to line id: +Inf
// for an empty line, NaN for a non-finite q. Its cost grows with the
// distance, by a few cell lookups per factor of 4. It panics if id is not in
// [0, Len()).
func (ls *Lines) Distance(id int32, q XY) float64 {
	l := &ls.lines[id]
	if l.v1-l.v0 < 2 {
		return math.Inf(1)
	}
	if !finite(q) {
		return math.NaN()
	}
	sx, sy := ls.pl.metric(q.Y)
	s := min(sx, sy)
	// Widen the search level by level, starting where the box is in reach,
	// until a segment is found; then one search that reaches it is exact.
	b2 := l.box.dist2(q, sx, sy)
	for lv := 0; lv <= l.top; lv++ {
		h := ls.cell[lv] / 2 // plane units; reach h·s metres, 2×2 cells
		if lv == l.top {
			h = math.Inf(1)
		}
		reach := h * s
		if b2 > reach*reach {
			continue
		}
		best := ls.scan(id, l, lv, q, sx, sy, h, h)
		if best <= reach*reach {
			return math.Sqrt(best)
		}
		if !math.IsInf(best, 1) {
			r := math.Sqrt(best)
			rx, ry := r/sx, r/sy
			for lv < l.top && ls.cell[lv] < 2*max(rx, ry) {
				lv++
			}
			return math.Sqrt(ls.scan(id, l, lv, q, sx, sy, rx, ry))
		}
	}
	return math.NaN() // not reached: the top level holds every segment
}

// scan returns the least squared distance from q to the segments of line
// id listed in the cells of level lv that meet the box q ± (rx, ry)
// clipped to the line's box, or +Inf if there are none. Every segment with
// a point in that box is among them.
func (ls *Lines) scan(id int32, l *line, lv int, q XY, sx, sy, rx, ry float64) float64 {
	// A hair more than the box, against rounding.
	rx, ry = rx*(1+1e-9)+gridMargin, ry*(1+1e-9)+gridMargin
	x0, x1 := max(q.X-rx, l.box.min.X), min(q.X+rx, l.box.max.X)
	y0, y1 := max(q.Y-ry, l.box.min.Y), min(q.Y+ry, l.box.max.Y)
	best := math.Inf(1)
	if !(x0 <= x1 && y0 <= y1) {
		return best
	}
	inv := ls.inv[lv]
	cx0, cx1 := int((x0-ls.o.X)*inv), int((x1-ls.o.X)*inv)
	cy0, cy1 := int((y0-ls.o.Y)*inv), int((y1-ls.o.Y)*inv)
	verts := ls.verts
	for cy := cy0; cy <= cy1; cy++ {
		for cx := cx0; cx <= cx1; cx++ {
			v, ok := ls.cells[key(id, lv, cx, cy)]
			if !ok {
				continue
			}
			runs := ls.runs[:0]
			if v&multiRun != 0 {
				off := uint32(v)
				runs = ls.runs[off : off+uint32(v>>32)&(1<<31-1)]
				v = runs[0]
				runs = runs[1:]
			}
			for {
				start, n := uint32(v), uint32(v>>32)
				for i := start; i < start+n; i++ {
					best = min(best, segDist2(q, verts[i], verts[i+1], sx, sy))
				}
				if len(runs) == 0 {
					break
				}
				v, runs = runs[0], runs[1:]
			}
		}
	}
	return best
}
