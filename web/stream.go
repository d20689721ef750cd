package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
)

const (
	// flushEvery is how often changed trucks are sent: at most one update
	// per truck per flushEvery.
	flushEvery = time.Second
	// keepAliveEvery sends a comment so proxies keep the stream open.
	keepAliveEvery = 15 * time.Second
	// clientQueue is how many events a console may fall behind by; one
	// that falls further is disconnected and its browser reconnects and
	// reloads the state (EventSource does so by itself).
	clientQueue = 64
)

// client is one connected console's stream.
type client struct {
	id   *identity
	ch   chan *event
	gone chan struct{}
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

// hub fans events out to the connected consoles, each seeing only its
// scope.
type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	m       *metrics
}

func newHub(m *metrics) *hub { return &hub{clients: map[*client]struct{}{}, m: m} }

func (h *hub) add(c *client) {
	h.mu.Lock()
	h.clients[c] = struct{}{}
	n := len(h.clients)
	h.mu.Unlock()
	h.m.streams.Set(float64(n))
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	n := len(h.clients)
	h.mu.Unlock()
	h.m.streams.Set(float64(n))
}

// dropWhere disconnects the clients match selects (a session that
// ended, a user whose rights changed): their browsers reconnect and are
// judged again.
func (h *hub) dropWhere(match func(*identity) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if match(c.id) {
			c.drop()
		}
	}
}

// send queues the events pick returns for each client; a client whose
// queue is full is disconnected rather than blocking the others (its
// browser reconnects and reloads).
func (h *hub) send(pick func(*identity) []*event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		for _, ev := range pick(c.id) {
			select {
			case c.ch <- ev:
			default:
				h.m.streamDrops.Inc()
				c.drop()
			}
		}
	}
}

// seesTrucks reports whether id may see trucks, and which company's ("" all).
func seesTrucks(id *identity) (bool, string) {
	switch id.Role {
	case config.RoleAdmin, config.RoleInspection:
		return true, ""
	case config.RoleCompany:
		return true, id.Company
	}
	return false, ""
}

func seesGauges(id *identity) bool { return id.Role == config.RoleAdmin || id.Role == config.RoleDuty }

// mayAlert reports whether id may see alert a.
func mayAlert(id *identity, a *alerting.Alert) bool {
	switch id.Role {
	case config.RoleAdmin:
		return true
	case config.RoleInspection:
		return a.Subject.Kind == "truck"
	case config.RoleDuty:
		return a.Subject.Kind == "gauge"
	case config.RoleCompany:
		return a.Subject.Kind == "truck" && a.Subject.Company == id.Company
	}
	return false
}

// broadcastFleet sends one flush of changed trucks and gauges: one trucks
// event per scope (all, or one company), encoded once per scope.
func (h *hub) broadcastFleet(trucks []truckView, gauges []gaugeView, levels func(device string) string) {
	if len(trucks) == 0 && len(gauges) == 0 {
		return
	}
	byScope := map[string]*event{}
	encode := func(company string) *event {
		if ev, ok := byScope[company]; ok {
			return ev
		}
		b := make([]byte, 0, 64+len(trucks)*56)
		b = append(b, "event: trucks\ndata: {\"t\":["...)
		n := 0
		for _, t := range trucks {
			if company != "" && t.Company != company {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = compact(t, b)
			n++
		}
		b = append(b, "]}\n\n"...)
		var ev *event
		if n > 0 {
			ev = newEvent(b)
		}
		byScope[company] = ev
		return ev
	}
	var gev []byte
	if len(gauges) > 0 {
		gev = append(gev, "event: gauges\ndata: {\"g\":["...)
		for i, g := range gauges {
			if i > 0 {
				gev = append(gev, ',')
			}
			gev = append(gev, '[')
			gev = strconv.AppendQuote(gev, g.Device)
			gev = append(gev, ',')
			gev = strconv.AppendFloat(gev, g.Value, 'f', 1, 64)
			gev = append(gev, ',')
			gev = strconv.AppendQuote(gev, levels(g.Device))
			gev = append(gev, ']')
		}
		gev = append(gev, "]}\n\n"...)
	}
	var gauge *event
	if gev != nil {
		gauge = newEvent(gev)
	}
	h.send(func(id *identity) []*event {
		var out []*event
		if ok, company := seesTrucks(id); ok && len(trucks) > 0 {
			if ev := encode(company); ev != nil {
				out = append(out, ev)
			}
		}
		if seesGauges(id) && gauge != nil {
			out = append(out, gauge)
		}
		return out
	})
}

// broadcastAlert sends an alert's summary to those who may see it.
func (h *hub) broadcastAlert(a *alerting.Alert, s *Server) {
	js, err := json.Marshal(s.summary(a, nil))
	if err != nil {
		return
	}
	ev := []*event{newEvent(fmt.Appendf(nil, "event: alert\ndata: %s\n\n", js))}
	h.send(func(id *identity) []*event {
		if mayAlert(id, a) {
			return ev
		}
		return nil
	})
}

// handleStream serves GET /console/api/stream.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	c := &client{id: identityOf(r), ch: make(chan *event, clientQueue), gone: make(chan struct{})}
	s.hub.add(c)
	defer s.hub.remove(c)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	// A phone on the road pays for every byte: the numbers of 2,000 moving
	// trucks compress several times over (docs/benchmarks.md).
	gz := acceptsGzip(r)
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Add("Vary", "Accept-Encoding")
	w.WriteHeader(http.StatusOK)
	out, err := newSSEWriter(w, gz)
	if err != nil || out.write(streamHello) != nil {
		return
	}
	defer out.close()
	fl.Flush()
	keep := time.NewTicker(keepAliveEvery)
	defer keep.Stop()
	for {
		var ev *event
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case <-keep.C:
			// The session may have ended (expired, signed out elsewhere) or
			// the user's rights changed since the stream opened.
			if now := s.authenticate(r); now == nil || now.Role != c.id.Role || now.Company != c.id.Company {
				return
			}
			ev = keepAlive
		case ev = <-c.ch:
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := out.write(ev); err != nil {
			return
		}
		fl.Flush()
	}
}

var (
	streamHello = newEvent([]byte("retry: 2000\n: urbanwatch console stream\n\n"))
	keepAlive   = newEvent([]byte(": keep-alive\n\n"))
)

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// runStream flushes fleet changes every flushEvery and forwards alert
// changes until ctx ends.
func (s *Server) runStream(ctx context.Context) {
	flush := s.flushC
	if flush == nil {
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		flush = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush:
			trucks, gauges := s.fleet.tick()
			s.hub.broadcastFleet(trucks, gauges, s.gaugeLevel)
		case id := <-s.alertChanges:
			s.alertChanged(id)
		case <-s.resync:
			s.syncAlerts()
		}
	}
}
