package geo

import (
	"cmp"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// DefaultPolygonCell is the grid cell size, in metres, NewPolygons uses when
// given none: about the size of a small site, so a site touches a few cells
// and most of a zone's cells lie wholly inside it.
const DefaultPolygonCell = 250

// maxPolygonCells bounds the grid; a wider spread of polygons gets coarser
// cells instead of more of them.
const maxPolygonCells = 1 << 21

// Polygons indexes polygons by integer id (the caller's index into its own
// slice) for point containment and distance.
//
// A uniform grid covers the polygons' bounding box. For each polygon part
// a cell is either wholly inside it (flagged, no test at query time),
// wholly outside (not listed), or crossed by its boundary; then the cell
// keeps copies of the part's edges that reach it and an interior reference
// point whose inside/outside state was settled at build time, and a query
// counts the edges that cross the segment from the point to the reference.
// A query therefore costs one cell lookup and a handful of edge tests,
// whatever the size of the polygons.
//
// A Polygons is immutable; any number of goroutines may query it at once.
type Polygons struct {
	pl     Plane
	n      int
	o      XY      // grid origin (south-west corner)
	c, inv float64 // cell size and its inverse, metres
	nx, ny int
	off    []uint32 // cell i holds ents[off[i]:off[i+1]]
	ents   []pent   // by cell, then id, then part
	edges  []seg    // the edges of partial entries
	idOff  []uint32 // polygon id's edges are all[idOff[id]:idOff[id+1]]
	all    []seg
}

// pent is a polygon part's entry in a cell.
type pent struct {
	id     int32
	full   bool   // the cell lies wholly inside the part
	refIn  bool   // ref is inside the part
	e0, e1 uint32 // the part's edges reaching the cell: edges[e0:e1]
	ref    XY
}

// part is one polygon of a MultiPolygon, projected: rings[0] is the outer
// ring, the rest holes; rings combine by the even-odd rule.
type part struct {
	id    int32
	rings [][]XY
	box   bbox
}

// NewPolygons indexes areas: the id of areas[i] is i. A point is inside an
// area when it is inside any polygon of the MultiPolygon (so overlapping
// parts are a union), and inside a polygon when it is inside the outer ring
// and not inside a hole (the even-odd rule over its rings; orientation does
// not matter), or within 1 µm of any edge. Rings need not be closed; rings
// with fewer than 3 distinct positions, and polygons whose outer ring is
// such, are ignored, as are non-finite positions.
//
// cellM is the grid cell size in metres; cellM ≤ 0 picks
// DefaultPolygonCell. The cell grows if the polygons spread over more than
// maxPolygonCells cells.
func NewPolygons(pl Plane, areas []orb.MultiPolygon, cellM float64) *Polygons {
	if !(cellM > 0) || math.IsInf(cellM, 0) {
		cellM = DefaultPolygonCell
	}
	ps := &Polygons{pl: pl, n: len(areas), idOff: make([]uint32, len(areas)+1)}

	// Project, and keep every edge per id for Distance.
	var parts []part
	box := emptyBox()
	for id, mp := range areas {
		for _, poly := range mp {
			p := part{id: int32(id), box: emptyBox()}
			for i, ring := range poly {
				r := projectPath(pl, ring, nil)
				if len(r) > 1 && r[0] == r[len(r)-1] {
					r = r[:len(r)-1]
				}
				if len(r) < 3 {
					if i == 0 {
						break // no outer ring, no polygon
					}
					continue
				}
				p.rings = append(p.rings, r)
				for j, q := range r {
					p.box = p.box.extend(q)
					ps.all = append(ps.all, seg{q, r[(j+1)%len(r)]})
				}
			}
			if len(p.rings) > 0 {
				parts = append(parts, p)
				box = box.union(p.box)
			}
		}
		ps.idOff[id+1] = uint32(len(ps.all))
	}
	if len(parts) == 0 {
		ps.off = []uint32{0}
		return ps
	}

	// The grid: a margin of a cell all round, coarser cells if too many.
	c := cellM
	w, h := box.max.X-box.min.X, box.max.Y-box.min.Y
	for (math.Ceil(w/c)+2)*(math.Ceil(h/c)+2) > maxPolygonCells {
		c *= 2
	}
	ps.nx, ps.ny = int(math.Ceil(w/c))+2, int(math.Ceil(h/c))+2
	ps.c, ps.inv = c, 1/c
	ps.o = XY{box.min.X - c, box.min.Y - c}

	// Entries of every part, in id then part order, then a stable
	// counting sort by cell.
	type tent struct {
		cell int
		pent
	}
	var (
		tents  []tent
		tedges []seg
		pairs  []cellEdge
	)
	for pi := range parts {
		p := &parts[pi]
		pairs = pairs[:0]
		for _, r := range p.rings {
			for j, a := range r {
				b := r[(j+1)%len(r)]
				coverSegment(a, b, ps.o, c, func(cx, cy int) {
					if cx >= 0 && cx < ps.nx && cy >= 0 && cy < ps.ny {
						pairs = append(pairs, cellEdge{cy*ps.nx + cx, seg{a, b}})
					}
				})
			}
		}
		slices.SortStableFunc(pairs, func(x, y cellEdge) int { return x.cell - y.cell })

		// The box, grown as edges are, bounds the cells the part reaches.
		cx0, cy0 := ps.cellOf(XY{p.box.min.X - gridMargin, p.box.min.Y - gridMargin})
		cx1, cy1 := ps.cellOf(XY{p.box.max.X + gridMargin, p.box.max.Y + gridMargin})
		k := 0 // next pair
		for cy := cy0; cy <= cy1; cy++ {
			runIn, runKnown := false, false // state of the current run of edge-free cells
			for cx := cx0; cx <= cx1; cx++ {
				cell := cy*ps.nx + cx
				for k < len(pairs) && pairs[k].cell < cell {
					k++
				}
				j := k
				for j < len(pairs) && pairs[j].cell == cell {
					j++
				}
				if j > k { // the boundary reaches the cell
					e := pent{id: p.id, e0: uint32(len(tedges))}
					for _, ce := range pairs[k:j] {
						tedges = append(tedges, ce.s)
					}
					e.e1 = uint32(len(tedges))
					e.ref = ps.reference(cx, cy, tedges[e.e0:e.e1])
					e.refIn = p.contains(e.ref)
					tents = append(tents, tent{cell, e})
					runKnown = false
					k = j
					continue
				}
				if !runKnown { // no edge between the cells of a run: one test
					runIn, runKnown = p.contains(ps.center(cx, cy)), true
				}
				if runIn {
					tents = append(tents, tent{cell, pent{id: p.id, full: true}})
				}
			}
		}
	}

	ps.off = make([]uint32, ps.nx*ps.ny+1)
	for _, t := range tents {
		ps.off[t.cell+1]++
	}
	for i := 1; i < len(ps.off); i++ {
		ps.off[i] += ps.off[i-1]
	}
	ps.ents = make([]pent, len(tents))
	ps.edges = make([]seg, 0, len(tedges))
	next := slices.Clone(ps.off[:len(ps.off)-1])
	for _, t := range tents { // stable: keeps id, part order within a cell
		ps.ents[next[t.cell]] = t.pent
		next[t.cell]++
	}
	for i := range ps.ents { // lay the edges out in query order
		e := &ps.ents[i]
		if e.full {
			continue
		}
		e0 := uint32(len(ps.edges))
		ps.edges = append(ps.edges, tedges[e.e0:e.e1]...)
		e.e0, e.e1 = e0, uint32(len(ps.edges))
	}
	return ps
}

// cellEdge is an edge reaching a cell, while building.
type cellEdge struct {
	cell int
	s    seg
}

// Len returns the number of ids, len(areas) as given to NewPolygons.
func (ps *Polygons) Len() int { return ps.n }

// Containing appends to dst the ids of the polygons containing q (holes
// respected; a point on an edge, to within 1 µm, counts as inside), in
// ascending id order, and returns it. It does not allocate when dst has
// room for the answer.
func (ps *Polygons) Containing(q XY, dst []int32) []int32 {
	cell, ok := ps.cell(q)
	if !ok {
		return dst
	}
	last := int32(-1)
	for i := ps.off[cell]; i < ps.off[cell+1]; i++ {
		e := &ps.ents[i]
		if e.id == last {
			continue // another part of an id already in
		}
		if e.full || ps.inPart(e, q) {
			dst = append(dst, e.id)
			last = e.id
		}
	}
	return dst
}

// Contains reports whether polygon id contains q, by the rules of
// Containing; it is false for an id not in [0, Len()).
func (ps *Polygons) Contains(id int32, q XY) bool {
	cell, ok := ps.cell(q)
	if !ok {
		return false
	}
	ents := ps.ents[ps.off[cell]:ps.off[cell+1]]
	i, _ := slices.BinarySearchFunc(ents, id, func(e pent, id int32) int { return cmp.Compare(e.id, id) })
	for ; i < len(ents) && ents[i].id == id; i++ {
		if ents[i].full || ps.inPart(&ents[i], q) {
			return true
		}
	}
	return false
}

// Distance returns the distance in metres from q to polygon id's boundary,
// 0 if q is inside it, +Inf if the polygon is empty. It costs a pass over
// the polygon's edges when q is outside. It panics if id is not in
// [0, Len()).
func (ps *Polygons) Distance(id int32, q XY) float64 {
	if ps.Contains(id, q) {
		return 0
	}
	sx, sy := ps.pl.metric(q.Y)
	best := math.Inf(1)
	for _, s := range ps.all[ps.idOff[id]:ps.idOff[id+1]] {
		best = min(best, segDist2(q, s.a, s.b, sx, sy))
	}
	return math.Sqrt(best)
}

// cell returns the index of the grid cell holding q, if any.
func (ps *Polygons) cell(q XY) (int, bool) {
	fx, fy := (q.X-ps.o.X)*ps.inv, (q.Y-ps.o.Y)*ps.inv
	// Written so that NaN fails.
	if !(fx >= 0 && fx < float64(ps.nx) && fy >= 0 && fy < float64(ps.ny)) {
		return 0, false
	}
	return int(fy)*ps.nx + int(fx), true
}

// cellOf returns the grid coordinates of the cell holding q, clamped to the
// grid.
func (ps *Polygons) cellOf(q XY) (cx, cy int) {
	cx = int(math.Floor((q.X - ps.o.X) * ps.inv))
	cy = int(math.Floor((q.Y - ps.o.Y) * ps.inv))
	return min(max(cx, 0), ps.nx-1), min(max(cy, 0), ps.ny-1)
}

// center returns the centre of cell (cx, cy).
func (ps *Polygons) center(cx, cy int) XY {
	return XY{ps.o.X + (float64(cx)+0.5)*ps.c, ps.o.Y + (float64(cy)+0.5)*ps.c}
}

// reference picks the point of cell (cx, cy) farthest from the edges
// (among a lattice of candidates), so that its state, settled at build time,
// is robust, and no query point can be mistaken for it.
func (ps *Polygons) reference(cx, cy int, edges []seg) XY {
	best, bestD := ps.center(cx, cy), -1.0
	for _, k := range [...]int{4, 16} {
		for i := range k {
			for j := range k {
				q := XY{ps.o.X + (float64(cx)+(float64(i)+0.5)/float64(k))*ps.c,
					ps.o.Y + (float64(cy)+(float64(j)+0.5)/float64(k))*ps.c}
				d := math.Inf(1)
				for _, s := range edges {
					d = min(d, segDist2(q, s.a, s.b, 1, 1))
				}
				if d > bestD {
					best, bestD = q, d
				}
			}
		}
		if bestD > ps.c*ps.c*1e-4 { // 1 % of a cell is plenty
			break
		}
	}
	return best
}

// inPart reports whether q, a point of e's cell, is inside e's part: the
// state of the reference point, flipped by each edge crossing the segment
// from q to it. The segment lies in the cell, so only the cell's edges can
// cross it. A vertex exactly on the segment's line counts as lying to its
// left, consistently for both edges that meet there, so the count is right
// whatever the degeneracy.
func (ps *Polygons) inPart(e *pent, q XY) bool {
	in := e.refIn
	r := e.ref
	ux, uy := r.X-q.X, r.Y-q.Y
	for _, s := range ps.edges[e.e0:e.e1] {
		ex, ey := s.b.X-s.a.X, s.b.Y-s.a.Y
		tq := ex*(q.Y-s.a.Y) - ey*(q.X-s.a.X) // |ab| × q's offset from line ab
		if tq*tq <= onEdge*onEdge*(ex*ex+ey*ey) && segDist2(q, s.a, s.b, 1, 1) <= onEdge*onEdge {
			return true
		}
		la := ux*(s.a.Y-q.Y)-uy*(s.a.X-q.X) >= 0
		lb := ux*(s.b.Y-q.Y)-uy*(s.b.X-q.X) >= 0
		if la != lb { // ab straddles line qr; does it cross between q and r?
			tr := ex*(r.Y-s.a.Y) - ey*(r.X-s.a.X)
			if (tq > 0) != (tr > 0) {
				in = !in
			}
		}
	}
	return in
}

// contains reports whether q is inside p (even-odd over its rings) or on
// its boundary, by brute force; it is used at build time only.
func (p *part) contains(q XY) bool {
	in := false
	for _, r := range p.rings {
		for j, a := range r {
			b := r[(j+1)%len(r)]
			if segDist2(q, a, b, 1, 1) <= onEdge*onEdge {
				return true
			}
			if (a.Y > q.Y) != (b.Y > q.Y) && q.X < a.X+(q.Y-a.Y)*(b.X-a.X)/(b.Y-a.Y) {
				in = !in
			}
		}
	}
	return in
}
