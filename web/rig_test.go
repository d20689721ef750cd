package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

// clock is a time source the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakeHistory is stored telemetry in memory: the console's reads against
// a real InfluxDB are tested in storage/influx and by the browser test.
type fakeHistory struct {
	mu   sync.Mutex
	recs []telemetry.Record
}

func (h *fakeHistory) add(r telemetry.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
}

func (h *fakeHistory) Records(_ context.Context, devices []string, kinds []telemetry.Kind, from, to time.Time) ([]telemetry.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []telemetry.Record
	for _, r := range h.recs {
		if slices.Contains(devices, r.Device) && (len(kinds) == 0 || slices.Contains(kinds, r.Kind)) && !r.TS.Before(from) && r.TS.Before(to) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b telemetry.Record) int { return a.TS.Compare(b.TS) })
	return out, nil
}

func (h *fakeHistory) Buckets(_ context.Context, kind telemetry.Kind, fn string, to time.Time, bucket time.Duration, n int) (map[string][]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]float64{}
	from := to.Add(-time.Duration(n) * bucket)
	for _, r := range h.recs {
		if r.Kind != kind || r.TS.Before(from) || !r.TS.Before(to) {
			continue
		}
		b := out[r.Device]
		if b == nil {
			b = make([]float64, n)
			for i := range b {
				b[i] = math.NaN()
			}
			out[r.Device] = b
		}
		i := int(r.TS.Sub(from) / bucket)
		v := r.Rain.MM
		if kind == telemetry.KindDepth {
			v = r.Depth.DepthCM
		}
		switch {
		case math.IsNaN(b[i]):
			b[i] = v
		case fn == "sum":
			b[i] += v
		default:
			b[i] = max(b[i], v)
		}
	}
	return out, nil
}

// The test accounts: one per role, and a compliance manager of C01 and of
// C02. Demo truck i belongs to simulators.CompanyID(i): truck 0 to C01,
// truck 1 to C02.
var testUsers = []struct{ name, role, company, password string }{
	{"admin", "admin", "", "admin-password-1"},
	{"insp", "inspection", "", "insp-password-1"},
	{"duty", "duty", "", "duty-password-1"},
	{"c01", "company", "C01", "c01-password-1"},
	{"c02", "company", "C02", "c02-password-1"},
}

type rig struct {
	t     testing.TB
	clk   *testClock
	city  *config.City
	mg    *alerting.Manager
	hist  *fakeHistory
	srv   *Server
	http  *httptest.Server
	flush chan time.Time
	reg   *prometheus.Registry
	seq   uint64
}

func newRig(t *testing.T) *rig { return newRigTB(t, 24) }

// newRigTB builds a console over a demo city of trucks trucks.
func newRigTB(t testing.TB, trucks int) *rig {
	t.Helper()
	r := &rig{t: t, clk: &testClock{t: time.Date(2026, 11, 24, 21, 0, 0, 0, shanghai)}, hist: &fakeHistory{},
		flush: make(chan time.Time), reg: prometheus.NewRegistry()}
	r.city = simulators.DemoCity(trucks, 3, 2, simulators.DemoSeed)
	if err := r.city.Validate(nil); err != nil {
		t.Fatal(err)
	}
	settings := config.DefaultAlerting()
	if err := settings.Validate(r.city); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mg, err := alerting.New(alerting.Options{Dir: dir + "/alerting", Config: settings, City: r.city, Now: r.clk.Now,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mg.Close() })
	r.mg = mg
	users := &config.Users{}
	for _, u := range testUsers {
		us := config.User{Name: u.name, Role: config.Role(u.role), Company: u.company}
		if err := us.SetPassword(u.password, 4); err != nil {
			t.Fatal(err)
		}
		users.Users = append(users.Users, us)
	}
	if err := users.Validate(r.city); err != nil {
		t.Fatal(err)
	}
	r.srv, err = New(Options{Users: users, City: r.city, Alerts: mg, History: r.hist, DataDir: dir, Now: r.clk.Now,
		Logger: zerolog.Nop(), Registerer: r.reg})
	if err != nil {
		t.Fatal(err)
	}
	r.srv.flushC = r.flush
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.srv.Run(ctx); close(done) }()
	r.http = httptest.NewServer(r.srv.Handler())
	t.Cleanup(func() {
		r.http.CloseClientConnections()
		r.http.Close()
		cancel()
		<-done
	})
	return r
}

// truck returns demo truck i's plate and device.
func (r *rig) truck(i int) (plate, device string) {
	return r.city.Trucks[i].Plate, r.city.Trucks[i].Devices[0]
}

// fix feeds a GPS fix of device at ts to the console and the history.
func (r *rig) fix(device string, ts time.Time, lat, lon, speed float64) {
	r.seq++
	rec := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: device, Seq: r.seq, TS: ts, Received: ts},
		Fix: telemetry.Fix{Lat: lat, Lon: lon, SpeedKmh: speed, Heading: 90, Sats: 10, Valid: true}}
	r.hist.add(rec)
	r.srv.Observe(&rec)
}

// sensors feeds a sensor report.
func (r *rig) sensors(device string, ts time.Time, cover telemetry.Cover, body telemetry.Body, loadKg float64) {
	r.seq++
	rec := telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{Device: device, Seq: r.seq, TS: ts, Received: ts},
		Sensors: telemetry.SensorState{Cover: cover, Body: body, LoadKg: loadKg, HasLoad: true}}
	r.hist.add(rec)
	r.srv.Observe(&rec)
}

// raise applies a firing truck alert of rule for demo truck i.
func (r *rig) raise(rule string, i int, started time.Time, severity string) string {
	r.t.Helper()
	plate, device := r.truck(i)
	tr := r.city.Trucks[i]
	co := r.city.Company(tr.Company)
	ev := &telemetry.Alert{ID: telemetry.AlertID(rule, plate, started), Rule: rule, State: telemetry.AlertFiring, Version: 1,
		Severity: severity, StartedAt: started, TS: started.Add(30 * time.Second),
		Subject:  telemetry.Subject{Kind: telemetry.SubjectTruck, ID: plate, Name: plate, Company: tr.Company, CompanyName: co.Name, District: "奎文区", Device: device},
		Location: telemetry.Location{Lat: 36.70, Lon: 119.16}, Details: map[string]any{"cover": "open", "speed_kmh": 32.0, "load_kg": 18000.0}}
	if err := r.mg.Apply([]*telemetry.Alert{ev}); err != nil {
		r.t.Fatal(err)
	}
	return ev.ID
}

// clear applies the rules' resolution of alert id at ts.
func (r *rig) clear(id string, i int, ts time.Time) {
	r.t.Helper()
	a, err := r.mg.Get(id)
	if err != nil {
		r.t.Fatal(err)
	}
	ev := &telemetry.Alert{ID: id, Rule: a.Rule, State: telemetry.AlertResolved, Version: 2, Severity: a.Severity,
		StartedAt: a.StartedAt, TS: ts, Subject: a.Subject, Location: a.Location, Details: a.Details}
	if err := r.mg.Apply([]*telemetry.Alert{ev}); err != nil {
		r.t.Fatal(err)
	}
}

// browser is one signed-in (or not) console.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func (r *rig) browser() *browser { return r.browserTB(r.t) }

func (r *rig) browserTB(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: r.http.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// login signs in as name; it returns the HTTP status.
func (b *browser) login(name, password string) int {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+"/login", strings.NewReader(url.Values{"username": {name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", b.base)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var me map[string]any
		if code := b.getJSON("/console/api/me", &me); code != http.StatusOK {
			b.t.Fatalf("me after sign-in: %d", code)
		}
		b.csrf, _ = me["csrf"].(string)
	}
	return resp.StatusCode
}

func (b *browser) signIn(name string) *browser {
	b.t.Helper()
	for _, u := range testUsers {
		if u.name == name {
			if code := b.login(name, u.password); code != http.StatusOK {
				b.t.Fatalf("sign in %s: %d", name, code)
			}
			return b
		}
	}
	b.t.Fatalf("no test user %s", name)
	return nil
}

// get returns the status and body of GET path.
func (b *browser) get(path string) (int, []byte, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func (b *browser) getJSON(path string, v any) int {
	b.t.Helper()
	code, body, _ := b.get(path)
	if code == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			b.t.Fatalf("GET %s: %v: %.200s", path, err, body)
		}
	}
	return code
}

// post sends JSON with the session's CSRF token (csrf "" sends none).
func (b *browser) post(path string, body any, csrf string) (int, map[string]any) {
	b.t.Helper()
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(string(js)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.base)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// sse is an open live stream.
type sse struct {
	events chan [2]string // event name, data
	close  func()
}

func (b *browser) stream() *sse {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/console/api/stream", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("stream: %d", resp.StatusCode)
	}
	s := &sse{events: make(chan [2]string, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[7:]
			case strings.HasPrefix(line, "data: "):
				s.events <- [2]string{name, line[6:]}
			}
		}
	}()
	s.close = func() { cancel(); resp.Body.Close(); <-done }
	b.t.Cleanup(s.close)
	return s
}

// next returns the next event named name, skipping others, or fails after
// a generous timeout (the stream is driven by the test's own flushes).
func (s *sse) next(t *testing.T, name string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("stream closed waiting for %s", name)
			}
			if ev[0] == name {
				return ev[1]
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

// waitClosed fails unless the server ends the stream (events stop and the
// channel closes) within a generous timeout.
func (s *sse) waitClosed(t *testing.T) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the stream is still open")
		}
	}
}

// open reports whether the stream has not been closed (it drains what is
// queued).
func (s *sse) open() bool {
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return false
			}
		default:
			return true
		}
	}
}
