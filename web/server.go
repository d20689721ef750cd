// Package web serves the console: the pages the night inspection teams,
// the flood duty officers and the transport companies' compliance managers
// work from, the JSON they fetch, and a live stream of trucks, gauges and
// alerts (docs/console.md). Every asset is embedded, so the console works
// with no internet.
//
// Access is enforced here, on the server, for every page, JSON endpoint,
// export and the live stream: a company user sees its own company's trucks
// only, whatever the browser asks for.
package web

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

//go:embed static
var staticFS embed.FS

// Alerts is what the console needs of the alert store; alerting.Manager
// implements it. Returned alerts are copies the console may keep.
type Alerts interface {
	// List returns the alerts f selects, newest first, at most f.Limit.
	List(f alerting.Filter) ([]*alerting.Alert, int)
	// Select returns every alert f selects as summaries (no history).
	Select(f alerting.Filter) []*alerting.Alert
	// Get returns one alert with its history, or an error wrapping
	// alerting.ErrNotFound.
	Get(id string) (*alerting.Alert, error)
	Acknowledge(id, by, note string) (*alerting.Alert, error)
	Resolve(id, by, note string) (*alerting.Alert, error)
	AddNote(id, by, note string) (*alerting.Alert, error)
	SetOutcome(id, by string, o alerting.Outcome, note string) (*alerting.Alert, error)
	// CAPMessages returns the CAP messages issued, newest first.
	CAPMessages(limit int) []alerting.CAPEntry
	// Watch registers fn to be told the id of every alert that changes;
	// fn must not block.
	Watch(fn func(id string))
}

// History is the stored telemetry the console reads tracks, evidence and
// the flood board from (InfluxDB; app adapts storage/influx).
type History interface {
	// Records returns the stored records of devices, of the given kinds
	// (all when empty), with from ≤ ts < to, in device-time order.
	Records(ctx context.Context, devices []string, kinds []telemetry.Kind, from, to time.Time) ([]telemetry.Record, error)
	// Buckets returns per device n consecutive buckets of fn ("sum" or
	// "max") over the kind's value (rain mm, depth cm) ending at to,
	// oldest first; NaN where a bucket has no report.
	Buckets(ctx context.Context, kind telemetry.Kind, fn string, to time.Time, bucket time.Duration, n int) (map[string][]float64, error)
}

// Options configure a Server.
type Options struct {
	// Users are the console's accounts; nil turns the console off (its
	// pages answer 404).
	Users *config.Users
	// City is what the console shows; required.
	City   *config.City
	Alerts Alerts
	// History reads stored telemetry; nil leaves tracks, evidence and
	// charts empty (and says so).
	History History
	// DataDir holds evidence packets (DataDir/evidence) and trips
	// (DataDir/console); required.
	DataDir       string
	TileURL       string
	SessionTTL    time.Duration // default 12h
	SecureCookies bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (for the sign-in limit).
	TrustedProxies []netip.Prefix
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Server is the console. Observe, SetCity and SetUsers may be called from
// any goroutine; Run must be running for the live stream to move.
type Server struct {
	o     Options
	log   zerolog.Logger
	now   func() time.Time
	m     *metrics
	users atomic.Pointer[config.Users]
	city  atomic.Pointer[config.City]

	sessions *sessions
	fleet    *fleet
	hub      *hub
	trips    *tripLog
	evidence *evidenceStore

	alertChanges chan string
	resync       chan struct{}
	// flushC, when set (tests), replaces the stream's flushEvery ticker.
	flushC <-chan time.Time

	levelsMu sync.Mutex
	levels   map[string]string // gauge device → CMA or depth level in force

	cityMu   sync.Mutex
	cityJSON map[string][]byte // by company scope ("" all)
}

type metrics struct {
	logins      *prometheus.CounterVec
	denied      *prometheus.CounterVec
	streams     prometheus.Gauge
	streamDrops prometheus.Counter
	evidence    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_console_logins_total",
			Help: "Console sign-in attempts by result (ok, refused, limited, forbidden, bad_request)."}, []string{"result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_console_denied_total",
			Help: "Console requests refused by reason (role, scope, csrf)."}, []string{"reason"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "urbanwatch_console_streams",
			Help: "Consoles connected to the live stream."}),
		streamDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_console_stream_drops_total",
			Help: "Live streams disconnected because the console fell too far behind."}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_console_evidence_total",
			Help: "Evidence packets served, by whether they were built now or read from disk."}, []string{"source"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.logins, m.denied, m.streams, m.streamDrops, m.evidence} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// New builds the console; it opens the trip log and the evidence store
// under DataDir.
func New(o Options) (*Server, error) {
	if o.City == nil || o.Alerts == nil || o.DataDir == "" {
		return nil, errors.New("web: City, Alerts and DataDir are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger, now: o.Now, m: m,
		sessions:     newSessions(o.Now, o.SessionTTL),
		fleet:        newFleet(o.City, o.Now),
		hub:          newHub(m),
		alertChanges: make(chan string, 4096),
		resync:       make(chan struct{}, 1),
		levels:       map[string]string{},
		cityJSON:     map[string][]byte{},
	}
	s.users.Store(o.Users)
	s.city.Store(o.City)
	if s.trips, err = openTripLog(o.DataDir, o.City, o.Now, o.Logger); err != nil {
		return nil, err
	}
	if s.evidence, err = openEvidence(o.DataDir); err != nil {
		return nil, err
	}
	o.Alerts.Watch(func(id string) {
		select {
		case s.alertChanges <- id:
		default: // too many at once: read them all again
			select {
			case s.resync <- struct{}{}:
			default:
			}
		}
	})
	s.syncAlerts()
	return s, nil
}

// Enabled reports whether the console has users (without, its pages are
// not served).
func (s *Server) Enabled() bool { return s.users.Load() != nil }

// Observe applies one accepted record to the live map. It is called in
// arrival order; a replay after a restart may repeat records, which change
// nothing.
func (s *Server) Observe(r *telemetry.Record) { s.fleet.observe(r) }

// AddTrip records a trip the rules engine finished; the same trip again
// (a replay) is kept once.
func (s *Server) AddTrip(t *telemetry.Trip) { s.trips.add(t) }

// SetCity applies a reloaded city.
func (s *Server) SetCity(c *config.City) {
	s.city.Store(c)
	s.fleet.setCity(c)
	s.trips.setCity(c)
	s.cityMu.Lock()
	s.cityJSON = map[string][]byte{}
	s.cityMu.Unlock()
}

// SetUsers replaces the accounts (a reloaded users file). The sessions of
// a user who is gone, or whose password, role or company changed, end.
func (s *Server) SetUsers(u *config.Users) {
	old := s.users.Swap(u)
	if old == nil {
		return
	}
	for _, was := range old.Users {
		now := u.Find(was.Name)
		if now == nil || now.PasswordHash != was.PasswordHash || now.Role != was.Role || now.Company != was.Company {
			s.sessions.dropUser(was.Name)
			s.hub.dropWhere(func(c *identity) bool { return strings.EqualFold(c.Name, was.Name) })
		}
	}
}

// Run moves the live stream and keeps the trip log until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	go s.trips.run(ctx)
	s.runStream(ctx)
	return s.trips.close()
}

// Handler serves the console's pages, assets and JSON. Mount it on "/"
// after the more specific routes (/api/, /cap/, /metrics).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", s.enabled(http.StripPrefix("/static", cacheFor(files, time.Hour)).ServeHTTP))
	mux.HandleFunc("GET /{$}", s.enabled(s.handleRoot))
	mux.HandleFunc("GET /login", s.enabled(s.page("login.html")))
	mux.HandleFunc("POST /login", s.enabled(s.handleLogin))
	mux.HandleFunc("POST /logout", s.enabled(s.guard(false, s.handleLogout)))

	trucks := []config.Role{config.RoleAdmin, config.RoleInspection, config.RoleCompany}
	gauges := []config.Role{config.RoleAdmin, config.RoleDuty}
	pages := []struct {
		pattern, file string
		roles         []config.Role
	}{
		{"GET /console/inspect", "inspect.html", trucks},
		{"GET /console/truck/{plate}", "truck.html", trucks},
		{"GET /console/alerts", "alerts.html", nil},
		{"GET /console/alert/{id}", "alert.html", nil},
		{"GET /console/evidence/{id}", "evidence.html", trucks},
		{"GET /console/flood", "flood.html", gauges},
		{"GET /console/report", "report.html", trucks},
	}
	for _, p := range pages {
		mux.HandleFunc(p.pattern, s.enabled(s.guard(false, s.page(p.file), p.roles...)))
	}

	api := func(pattern string, h http.HandlerFunc, roles ...config.Role) {
		mux.HandleFunc(pattern, s.enabled(s.guard(true, h, roles...)))
	}
	api("GET /console/api/me", s.handleMe)
	api("GET /console/api/city", s.handleCity)
	api("GET /console/api/trucks", s.handleTrucks, trucks...)
	api("GET /console/api/trucks/{plate}", s.handleTruck, trucks...)
	api("GET /console/api/alerts", s.handleAlerts)
	api("GET /console/api/alerts/{id}", s.handleAlert)
	api("POST /console/api/alerts/{id}/ack", s.handleAction("ack"))
	api("POST /console/api/alerts/{id}/resolve", s.handleAction("resolve"))
	api("POST /console/api/alerts/{id}/notes", s.handleAction("note"))
	api("POST /console/api/alerts/{id}/outcome", s.handleAction("outcome"))
	api("GET /console/api/stream", s.handleStream)
	api("GET /console/api/evidence/{id}", s.handleEvidence, trucks...)
	api("GET /console/api/evidence/{id}/bundle", s.handleBundle, trucks...)
	api("GET /console/api/flood", s.handleFlood, gauges...)
	api("GET /console/api/report", s.handleReport, trucks...)
	api("GET /console/api/report.csv", s.handleReportCSV, trucks...)
	mux.HandleFunc("/console/api/", s.enabled(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such console endpoint: "+r.Method+" "+r.URL.Path)
	}))
	return securityHeaders(mux)
}

// enabled answers 404 while the console has no users.
func (s *Server) enabled(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.Enabled() {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if id := s.authenticate(r); id != nil {
		http.Redirect(w, r, homeOf(id.Role), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// page serves one embedded HTML shell.
func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := staticFS.ReadFile(path.Join("static", name))
		if err != nil {
			http.Error(w, "page missing from the build: "+name, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	}
}

func cacheFor(h http.Handler, d time.Duration) http.Handler {
	v := "private, max-age=" + itoa(int(d.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		h.ServeHTTP(w, r)
	})
}

// securityHeaders forbids framing (clickjacking of the action buttons) and
// loading anything from elsewhere but map tiles.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		// Every response of the console, the page shells under /static
		// included: no inline script runs, nothing loads from elsewhere
		// but map tiles.
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob: https: http:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
		h.ServeHTTP(w, r)
	})
}
