package simulators

import (
	"container/heap"
	"math"
)

// roadNet is an undirected road graph on the local plane.
type roadNet struct {
	nodes []roadNode
	adj   [][]roadEdge
}

// roadNode is an intersection, a site gate or a site.
type roadNode struct {
	P     xy
	Name  string
	Light bool // a signalised intersection
}

// roadEdge is one direction of a road segment.
type roadEdge struct {
	To   int
	Len  float64 // metres
	Cost float64 // routing cost: Len times the road's preference factor
	Road string
}

func (n *roadNet) addNode(p xy, name string, light bool) int {
	n.nodes = append(n.nodes, roadNode{P: p, Name: name, Light: light})
	n.adj = append(n.adj, nil)
	return len(n.nodes) - 1
}

// addEdge joins a and b both ways; factor < 1 makes trucks prefer the road.
func (n *roadNet) addEdge(a, b int, road string, factor float64) {
	l := dist(n.nodes[a].P, n.nodes[b].P)
	n.adj[a] = append(n.adj[a], roadEdge{To: b, Len: l, Cost: l * factor, Road: road})
	n.adj[b] = append(n.adj[b], roadEdge{To: a, Len: l, Cost: l * factor, Road: road})
}

// edge returns the edge a→b.
func (n *roadNet) edge(a, b int) (roadEdge, bool) {
	for _, e := range n.adj[a] {
		if e.To == b {
			return e, true
		}
	}
	return roadEdge{}, false
}

// removeEdge deletes the edge between a and b, both ways.
func (n *roadNet) removeEdge(a, b int) {
	drop := func(from, to int) {
		es := n.adj[from]
		for i, e := range es {
			if e.To == to {
				n.adj[from] = append(es[:i:i], es[i+1:]...)
				return
			}
		}
	}
	drop(a, b)
	drop(b, a)
}

// shortestPath returns the node sequence of the cheapest path from one node
// to another (Dijkstra on Cost), or nil when there is none. Ties are broken
// by node index, so the result is deterministic.
func (n *roadNet) shortestPath(from, to int) []int {
	dist := make([]float64, len(n.nodes))
	prev := make([]int, len(n.nodes))
	for i := range dist {
		dist[i] = math.Inf(1)
		prev[i] = -1
	}
	dist[from] = 0
	q := &nodeQueue{{node: from}}
	for q.Len() > 0 {
		it := heap.Pop(q).(queued)
		if it.cost > dist[it.node] {
			continue
		}
		if it.node == to {
			break
		}
		for _, e := range n.adj[it.node] {
			c := it.cost + e.Cost
			if c < dist[e.To] {
				dist[e.To] = c
				prev[e.To] = it.node
				heap.Push(q, queued{node: e.To, cost: c})
			}
		}
	}
	if math.IsInf(dist[to], 1) {
		return nil
	}
	var path []int
	for v := to; v != -1; v = prev[v] {
		path = append(path, v)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

type queued struct {
	node int
	cost float64
}

type nodeQueue []queued

func (q nodeQueue) Len() int { return len(q) }
func (q nodeQueue) Less(i, j int) bool {
	if q[i].cost != q[j].cost {
		return q[i].cost < q[j].cost
	}
	return q[i].node < q[j].node
}
func (q nodeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *nodeQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *nodeQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
