package alerting

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// shanghai is the city's time zone in every test.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// at is a wall time in Shanghai on 2026-11-23 (a Monday) plus days.
func at(days, hour, minute int) time.Time {
	return time.Date(2026, 11, 23+days, hour, minute, 0, 0, shanghai)
}

// clock is a controlled clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// recorder is an SMS gateway fake that records what it is asked to send and
// answers with the errors queued for a number.
type recorder struct {
	mu   sync.Mutex
	sent []sms.Message
	errs map[string][]error
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Send(_ context.Context, m sms.Message) (sms.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q := r.errs[m.To]; len(q) > 0 {
		r.errs[m.To] = q[1:]
		if q[0] != nil {
			return sms.Receipt{}, q[0]
		}
	}
	r.sent = append(r.sent, m)
	return sms.Receipt{Provider: "recorder", MessageID: m.ID}, nil
}

func (r *recorder) failNext(to string, errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string][]error{}
	}
	r.errs[to] = append(r.errs[to], errs...)
}

// to returns the messages sent to a number.
func (r *recorder) to(phone string) []sms.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sms.Message
	for _, m := range r.sent {
		if m.To == phone {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.sent) }

// The people of the test roster.
const (
	phoneCompany  = "+8613800000001" // 张伟, compliance manager of C01
	phoneCompany2 = "+8613800000002" // 王芳, of C02
	phoneNight1   = "+8613900000001" // night inspection team, 奎文区
	phoneNight2   = "+8613900000002"
	phoneDay      = "+8613900000003" // day inspection team, 奎文区
	phoneFlood    = "+8613700000001" // flood duty, 奎文区
	phonePublic   = "+8613600000001" // public warning group, 奎文区
	phoneChief    = "+8613500000001" // escalation tier 1
	phoneDirector = "+8613500000002" // escalation tier 2
)

const testAlerting = `
flap_window: 5m
defaults:
  quiet_hours: "22:00-07:00"
  max_per_hour: 20
people:
  - {id: night1, name: 刘队长, phone: "` + phoneNight1 + `"}
  - {id: night2, name: 陈队员, phone: "` + phoneNight2 + `", lang: en}
  - {id: day1, name: 赵队员, phone: "` + phoneDay + `"}
  - {id: flood1, name: 孙值班, phone: "` + phoneFlood + `"}
  - {id: public1, name: 社区网格员, phone: "` + phonePublic + `", max_per_hour: 3}
  - {id: chief, name: 周科长, phone: "` + phoneChief + `", quiet_hours: none}
  - {id: director, name: 吴局长, phone: "` + phoneDirector + `", quiet_hours: none}
groups:
  - id: night-kuiwen
    name: 奎文区夜间联合执法队
    kind: inspection
    members: [night1, night2]
    districts: [奎文区]
    shifts:
      - {days: [mon, tue, wed, thu, fri], hours: "20:00-06:00"}
  - id: day-kuiwen
    kind: inspection
    members: [day1]
    districts: [奎文区]
    shifts:
      - {hours: "08:00-17:00"}
  - {id: flood-kuiwen, kind: flood_duty, members: [flood1], districts: [奎文区]}
  - {id: public-kuiwen, kind: public, members: [public1], districts: [奎文区]}
  - {id: chief, name: 值班科长, kind: escalation, tier: 1, members: [chief]}
  - {id: director, name: 分管局长, kind: escalation, tier: 2, members: [director]}
escalation:
  after: {critical: 10m, major: 30m}
users:
  - {name: 调度员, token: dispatcher-token-0001}
  - {name: 张伟, token: company-c01-token-0001, company: C01}
`

func testCity() *config.City {
	return &config.City{Name: "潍坊市", RegionCode: "370700", Location: shanghai,
		Companies: []config.Company{
			{ID: "C01", Name: "潍坊鸢都运输有限公司", Contacts: []config.Contact{{Name: "张伟", Phone: phoneCompany, Role: "合规经理"}}},
			{ID: "C02", Name: "潍坊白浪河运输有限公司", Contacts: []config.Contact{{Name: "王芳", Phone: phoneCompany2, Role: "合规经理"}}},
		}}
}

// loadSettings writes yaml to a file and loads it the way serve does.
func loadSettings(t testing.TB, yaml string) *config.Alerting {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alerting.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadAlerting(path, testCity())
	if err != nil {
		t.Fatalf("load alerting settings: %v", err)
	}
	return cfg
}

// rig is a Manager on a controlled clock with a recording gateway.
type rig struct {
	t   testing.TB
	clk *clock
	gw  *recorder
	mg  *Manager
	reg *prometheus.Registry
	dir string
	cfg *config.Alerting
	pub *capRecorder
}

func newRig(t testing.TB, start time.Time, yaml string) *rig {
	t.Helper()
	r := &rig{t: t, clk: &clock{t: start}, gw: &recorder{}, dir: t.TempDir(), cfg: loadSettings(t, yaml),
		pub: &capRecorder{}}
	r.open()
	return r
}

// open (re)starts the Manager on the rig's store.
func (r *rig) open() {
	r.t.Helper()
	r.reg = prometheus.NewRegistry()
	mg, err := New(Options{Dir: r.dir, Config: r.cfg, City: testCity(), SMS: r.gw, CAP: r.pub, Now: r.clk.Now,
		Registerer: r.reg})
	if err != nil {
		r.t.Fatalf("new manager: %v", err)
	}
	r.mg = mg
	r.t.Cleanup(func() { mg.Close() })
}

func (r *rig) apply(evs ...*telemetry.Alert) {
	r.t.Helper()
	if err := r.mg.Apply(evs); err != nil {
		r.t.Fatalf("apply: %v", err)
	}
}

func (r *rig) tick() {
	r.t.Helper()
	if err := r.mg.Tick(r.clk.Now()); err != nil {
		r.t.Fatalf("tick: %v", err)
	}
}

// dispatch sends what is due now and returns when the next entry is due.
func (r *rig) dispatch() time.Time {
	r.t.Helper()
	next, err := r.mg.Dispatch(context.Background())
	if err != nil {
		r.t.Fatalf("dispatch: %v", err)
	}
	return next
}

func (r *rig) get(id string) *Alert {
	r.t.Helper()
	a, err := r.mg.Get(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func (r *rig) counter(name string, labels ...string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.Metric {
			have := map[string]string{}
			for _, lp := range m.Label {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

// capRecorder records CAP publications.
type capRecorder struct {
	mu   sync.Mutex
	docs []published
}

type published struct {
	topic   string
	payload string
	retain  bool
}

func (c *capRecorder) Publish(topic string, payload []byte, retain bool, _ byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs = append(c.docs, published{topic, string(payload), retain})
	return nil
}

func (c *capRecorder) all() []published {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]published(nil), c.docs...)
}

// truckAlert is a rules event about truck 鲁G·A0001 of C01 in 奎文区.
func truckAlert(rule, severity string, state telemetry.AlertState, version int, started, ts time.Time) *telemetry.Alert {
	return &telemetry.Alert{ID: telemetry.AlertID(rule, "鲁G·A0001", started), Rule: rule, State: state,
		Version: version, Severity: severity,
		Subject: telemetry.Subject{Kind: telemetry.SubjectTruck, ID: "鲁G·A0001", Name: "鲁G·A0001", Company: "C01",
			CompanyName: "潍坊鸢都运输有限公司", District: "奎文区", Device: "WF-T00001"},
		StartedAt: started, TS: ts, Location: telemetry.Location{Lat: 36.7065, Lon: 119.1617},
		Details: map[string]any{"cover": "open", "speed_kmh": 32.5}}
}

// gaugeAlert is a rules event about rain gauge WF-R017 in 奎文区.
func gaugeAlert(rule, severity string, state telemetry.AlertState, version int, started, ts time.Time, details map[string]any) *telemetry.Alert {
	return &telemetry.Alert{ID: telemetry.AlertID(rule, "WF-R017", started), Rule: rule, State: state,
		Version: version, Severity: severity,
		Subject: telemetry.Subject{Kind: telemetry.SubjectGauge, ID: "WF-R017", Name: "胜利街雨量站",
			District: "奎文区", Device: "WF-R017"},
		StartedAt: started, TS: ts, Location: telemetry.Location{Lat: 36.7102, Lon: 119.1583}, Details: details}
}

func kinds(a *Alert) []EventKind {
	var out []EventKind
	for _, e := range a.History {
		if e.Kind != EventNotification && e.Kind != EventCAP {
			out = append(out, e.Kind)
		}
	}
	return out
}

func states(a *Alert, ch Channel) map[NotifyState]int {
	out := map[NotifyState]int{}
	for _, n := range a.Notifications {
		if n.Channel == ch {
			out[n.State]++
		}
	}
	return out
}

// appendGarbage leaves half a frame at the end of the store, as a crash
// mid-write does.
func appendGarbage(t testing.TB, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, storeFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, '{', '"'}); err != nil {
		t.Fatal(err)
	}
}
