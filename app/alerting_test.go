package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// e2eRegistry has a fleet of trucks T01…T50.
const e2eRegistry = `
fleets:
  - {prefix: T, class: trucks, count: 50, width: 2, key: app-e2e-fleet-key-0123}
`

const (
	e2eContact = "+8613800000009"
	e2eSecret  = "gateway-signing-secret"
)

// e2eCity has n trucks of company C1, whose compliance manager is
// e2eContact, on one corridor between a construction and a disposal site.
func e2eCity(n int) func(tb testing.TB, reg *config.Registry) *config.City {
	return func(tb testing.TB, reg *config.Registry) *config.City {
		tb.Helper()
		a, b := plane.Unproject(geo.XY{X: 0, Y: 0})
		c2, d2 := plane.Unproject(geo.XY{X: 4000, Y: 0})
		c := &config.City{
			Companies: []config.Company{{ID: "C1", Name: "潍坊测试运输有限公司",
				Contacts: []config.Contact{{Name: "张伟", Phone: e2eContact, Role: "合规经理"}}}},
			Sites: []config.Site{
				{ID: "CS", Name: "测试工地", Kind: config.SiteConstruction, Area: square(0, 0, 200)},
				{ID: "DS", Name: "测试消纳场", Kind: config.SiteDisposal, Area: square(4000, 0, 200)},
			},
			Routes: []config.Route{{ID: "R1", Name: "测试路", Path: orb.LineString{{a, b}, {c2, d2}}}},
		}
		for i := 1; i <= n; i++ {
			plate := fmt.Sprintf("鲁G·A%04d", i)
			c.Trucks = append(c.Trucks, config.Truck{Plate: plate, Company: "C1", Devices: []string{fmt.Sprintf("T%02d", i)}})
			c.Permits = append(c.Permits, config.Permit{ID: fmt.Sprintf("P%d", i), Truck: plate,
				ValidFrom: config.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2030, Month: 12, Day: 31},
				Windows: []config.Window{{Start: 0, End: 24 * 3600}}, Origins: []string{"CS"}, Disposal: []string{"DS"},
				Routes: []string{"R1"}})
		}
		if err := c.Validate(reg); err != nil {
			tb.Fatal(err)
		}
		return c
	}
}

// smsGateway is a local webhook SMS gateway: it checks each request as a
// city's gateway would (method, path, headers, signature, body) and records
// when it arrived.
type smsGateway struct {
	mu   sync.Mutex
	msgs []gatewayMsg
	bad  []string
	got  chan struct{}
}

type gatewayMsg struct {
	At     time.Time
	Key    string
	To     string
	Text   string
	Params map[string]string
}

func newSMSGateway(tb testing.TB) (*smsGateway, string) {
	g := &smsGateway{got: make(chan struct{}, 1024)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(e2eSecret))
		mac.Write([]byte(r.Header.Get("X-Urbanwatch-Timestamp") + "." + string(body)))
		var m struct {
			ID, To, Template, Text, Lang string
			Params                       []struct{ Name, Value string }
		}
		problem := ""
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/sms":
			problem = r.Method + " " + r.URL.Path
		case r.Header.Get("Content-Type") != "application/json":
			problem = "content type " + r.Header.Get("Content-Type")
		case r.Header.Get("X-Urbanwatch-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)):
			problem = "bad signature"
		case json.Unmarshal(body, &m) != nil || m.ID == "" || m.ID != r.Header.Get("Idempotency-Key"):
			problem = "bad body " + string(body)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if problem != "" {
			g.bad = append(g.bad, problem)
			http.Error(w, problem, http.StatusBadRequest)
			return
		}
		params := map[string]string{}
		for _, p := range m.Params {
			params[p.Name] = p.Value
		}
		g.msgs = append(g.msgs, gatewayMsg{At: at, Key: m.ID, To: m.To, Text: m.Text, Params: params})
		w.Write([]byte(`{"id":"gw-1"}`))
		g.got <- struct{}{}
	}))
	tb.Cleanup(srv.Close)
	return g, srv.URL + "/sms"
}

func (g *smsGateway) all() ([]gatewayMsg, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gatewayMsg(nil), g.msgs...), append([]string(nil), g.bad...)
}

// withSMSGateway makes the app send SMS to url through the webhook provider,
// with no quiet hours (the test runs at any hour), the given per-person
// cap and global rate.
func withSMSGateway(tb testing.TB, url string, perHour int, perSecond float64) func(*Options) {
	return func(o *Options) {
		path := filepath.Join(tb.TempDir(), "alerting.yaml")
		os.WriteFile(path, fmt.Appendf(nil, "defaults: {quiet_hours: none, max_per_hour: %d}\nsms:\n  provider: webhook\n  rate_per_second: %g\n  webhook: {url: %q, secret: %q}\n",
			perHour, perSecond, url, e2eSecret), 0o600)
		s, err := config.LoadAlerting(path, o.City)
		if err != nil {
			tb.Fatal(err)
		}
		o.Alerting = s
	}
}

// tripResult is when each truck's triggering fix was published.
type tripResult struct {
	published map[string]map[time.Time]time.Time // device → fix time → wall time its publish completed
}

// driveTrips drives trucks T01…Tn with their covers open (uncoveredTrip)
// at once, each over its own connection.
func driveTrips(tb testing.TB, a *App, reg *config.Registry, n int, start time.Time) *tripResult {
	res := &tripResult{published: map[string]map[time.Time]time.Time{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		dev := fmt.Sprintf("T%02d", i)
		cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID(dev).
			SetUsername(dev).SetPassword(secretOf(reg, dev)).SetProtocolVersion(4))
		if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			tb.Fatalf("%s connect: %v", dev, tok.Error())
		}
		tb.Cleanup(func() { cl.Disconnect(50) })
		times := map[time.Time]time.Time{}
		res.published[dev] = times
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range uncoveredTrip(start) {
				topic, payload := "trucks/"+dev+"/gps", fmt.Sprintf(`{"ts":%d,"seq":%d,"lat":%.7f,"lon":%.7f,"speed_kmh":%g,"heading":90,"sats":10,"valid":true}`,
					r.TS.UnixMilli(), r.Seq, r.Fix.Lat, r.Fix.Lon, r.Fix.SpeedKmh)
				if r.Kind != telemetry.KindGPS {
					topic, payload = "trucks/"+dev+"/sensors", fmt.Sprintf(`{"ts":%d,"seq":%d,"cover":%q,"body":"down","load_kg":%g}`,
						r.TS.UnixMilli(), r.Seq, r.Sensors.Cover.String(), r.Sensors.LoadKg)
				}
				if tok := cl.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					tb.Errorf("%s publish: %v", dev, tok.Error())
					return
				}
				if r.Kind == telemetry.KindGPS {
					mu.Lock()
					times[r.TS.UTC()] = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return res
}

// latencies pairs each SMS at the gateway with the publish of the fix that
// raised its alert, and returns publish → gateway durations.
func latencies(tb testing.TB, a *App, res *tripResult, msgs []gatewayMsg) []time.Duration {
	tb.Helper()
	var out []time.Duration
	alerts, _ := a.Alerting().List(alertingFilterAll())
	byKey := map[string]time.Duration{}
	for _, al := range alerts {
		pub, ok := res.published[al.Subject.Device][al.StartedAt.Add(30*time.Second).UTC()]
		if !ok {
			tb.Fatalf("no publish recorded for %s at %v", al.Subject.Device, al.StartedAt.Add(30*time.Second))
		}
		for _, n := range al.Notifications {
			byKey[n.ID] = 0
			for _, m := range msgs {
				if m.Key == n.ID {
					byKey[n.ID] = m.At.Sub(pub)
				}
			}
		}
	}
	for _, d := range byKey {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// TestUncoveredTripToSMSAtGateway is the whole path: a truck with its cover
// open publishes over MQTT; the rules raise uncovered_load; alerting routes it
// to the company's compliance manager; the SMS request arrives at a local
// gateway, signed, exactly once.
func TestUncoveredTripToSMSAtGateway(t *testing.T) {
	db := testenv.Influxd(t)
	gw, url := newSMSGateway(t)
	a, reg := startAppCity(t, e2eRegistry, db.URL(), nil, e2eCity(1), withSMSGateway(t, url, 20, 10))
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	res := driveTrips(t, a, reg, 1, start)
	select {
	case <-gw.got:
	case <-time.After(30 * time.Second):
		t.Fatal("no SMS reached the gateway")
	}
	testenv.WaitFor(t, 30*time.Second, func() bool {
		al, _ := a.Alerting().List(alertingFilterAll())
		return len(al) == 1 && al[0].State == "resolved"
	}, "the alert resolved")
	msgs, bad := gw.all()
	if len(bad) > 0 {
		t.Fatalf("the gateway refused requests: %q", bad)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the gateway, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != e2eContact || m.Params["plate"] != "鲁G·A0001" || m.Params["company"] != "潍坊测试运输有限公司" {
		t.Errorf("message %+v", m)
	}
	d := latencies(t, a, res, msgs)
	t.Logf("publish of the triggering fix → SMS request at the gateway: %v", d)
}

func alertingFilterAll() alerting.Filter { return alerting.Filter{Limit: 1000} }

// BenchmarkAlertToSMS measures the whole path for 50 trucks driving with
// their covers open at once: from the publish of the fix that raises each
// uncovered_load to its SMS request arriving at a local webhook gateway
// (broker, spool fsync, rules, alert journal fsync, alert store fsync,
// outbox, HTTP). All 50 go to one compliance manager, so the per-person
// cap and the global rate are raised out of the way: this measures the
// pipeline, not the limits. Run with -benchtime 1x; it reports p50 and max
// in ms.
func BenchmarkAlertToSMS(b *testing.B) {
	const trucks = 50
	db := testenv.Influxd(b)
	gw, url := newSMSGateway(b)
	a, reg := startAppCity(b, e2eRegistry, db.URL(), nil, e2eCity(trucks), withSMSGateway(b, url, 1000, 1000))
	for b.Loop() {
		start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
		res := driveTrips(b, a, reg, trucks, start)
		testenv.WaitFor(b, time.Minute, func() bool { m, _ := gw.all(); return len(m) >= trucks }, "every SMS at the gateway")
		msgs, bad := gw.all()
		if len(bad) > 0 || len(msgs) != trucks {
			b.Fatalf("%d messages, refused %q", len(msgs), bad)
		}
		d := latencies(b, a, res, msgs)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, "max-ms")
	}
}
