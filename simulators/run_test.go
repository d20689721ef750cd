package simulators

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/internal/testbroker"
)

const testRegistryYAML = `
devices:
  - id: WF-T99999   # registered one by one, no derivable secret: skipped
    class: trucks
fleets:
  - {prefix: WF-T, class: trucks, count: 6, width: 5, key: sim-test-trucks-key-0123456789}
  - {prefix: WF-R, class: gauges, count: 3, width: 3, key: sim-test-rain-key-0123456789}
  - {prefix: WF-D, class: gauges, count: 2, width: 3, key: sim-test-depth-key-0123456789}
`

func testRegistry(t *testing.T) *config.Registry {
	t.Helper()
	reg, err := config.ParseRegistry("sim-test.yaml", []byte(testRegistryYAML))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRunPublishesAsEachDevice(t *testing.T) {
	reg := testRegistry(t)
	b := testbroker.Start(t, reg)
	metrics := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Broker: "tcp://" + b.Addr, Registry: reg,
			Trucks: 6, RainGauges: 3, DepthPoints: 2,
			FixInterval: 20 * time.Millisecond, GaugeInterval: 40 * time.Millisecond,
			Seed: 1, Storm: true, Registerer: metrics, ConnectRate: 1000,
			Logger: zerolog.New(zerolog.NewTestWriter(t)),
		})
	}()

	want := map[string]int{} // topic → messages needed
	for i := 1; i <= 6; i++ {
		id := "WF-T0000" + string(rune('0'+i))
		want["trucks/"+id+"/gps"] = 10
		want["trucks/"+id+"/sensors"] = 2
	}
	for _, id := range []string{"WF-R001", "WF-R002", "WF-R003"} {
		want["gauges/"+id+"/rain"] = 3
	}
	for _, id := range []string{"WF-D001", "WF-D002"} {
		want["gauges/"+id+"/depth"] = 3
	}
	b.WaitFor(t, 30*time.Second, func(ms []testbroker.Message) bool {
		n := map[string]int{}
		for _, m := range ms {
			n[m.Topic]++
		}
		for topic, k := range want {
			if n[topic] < k {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}

	forms := map[string]int{}
	seqs := map[string]map[uint64]bool{}
	for _, m := range b.Messages() {
		parts := strings.Split(m.Topic, "/")
		if _, ok := want[m.Topic]; !ok || parts[1] != m.Username || m.ClientID != m.Username || m.QoS != 1 {
			t.Fatalf("%s published by client %s user %s at QoS %d", m.Topic, m.ClientID, m.Username, m.QoS)
		}
		var p map[string]any
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("%s: %s: %v", m.Topic, m.Payload, err)
		}
		var ts time.Time
		switch v := p["ts"].(type) {
		case string:
			forms["rfc3339"]++
			var err error
			if ts, err = time.Parse(time.RFC3339Nano, v); err != nil || !strings.HasSuffix(v, "+08:00") {
				t.Fatalf("ts %q: %v", v, err)
			}
		case float64:
			forms["unixms"]++
			ts = time.UnixMilli(int64(v))
		default:
			t.Fatalf("%s: ts %v", m.Topic, p["ts"])
		}
		if d := time.Since(ts); d < -time.Minute || d > 5*time.Minute {
			t.Fatalf("%s: ts %v is %v from now", m.Topic, ts, d)
		}
		keys := map[string][]string{
			"gps":     {"seq", "lat", "lon", "speed_kmh", "heading", "sats", "valid"},
			"sensors": {"seq", "cover", "body"},
			"rain":    {"seq", "mm", "interval_s"},
			"depth":   {"seq", "depth_cm"},
		}[parts[2]]
		for _, k := range keys {
			if _, ok := p[k]; !ok {
				t.Fatalf("%s: %s lacks %q", m.Topic, m.Payload, k)
			}
		}
		if seqs[m.Topic] == nil {
			seqs[m.Topic] = map[uint64]bool{}
		}
		seq := uint64(p["seq"].(float64))
		if seqs[m.Topic][seq] {
			t.Fatalf("%s: seq %d twice", m.Topic, seq)
		}
		seqs[m.Topic][seq] = true
		if parts[2] == "gps" && !inBox(p["lat"].(float64), p["lon"].(float64)) {
			t.Fatalf("%s: fix outside Weifang: %s", m.Topic, m.Payload)
		}
	}
	if forms["rfc3339"] == 0 || forms["unixms"] == 0 {
		t.Fatalf("ts forms used: %v", forms)
	}
	// WF-T00004 (index 3) has no load sensor.
	for _, m := range b.Messages() {
		if m.Topic == "trucks/WF-T00004/sensors" && strings.Contains(string(m.Payload), "load_kg") {
			t.Fatalf("truck without load sensor sent %s", m.Payload)
		}
	}

	got := gather(t, metrics)
	if got[`urbanwatch_sim_published_total{kind="gps"}`] < 10 || got[`urbanwatch_sim_published_total{kind="rain"}`] < 1 {
		t.Errorf("published metrics %v", got)
	}
	if got["urbanwatch_sim_connected_devices"] != 0 || got["urbanwatch_sim_publish_errors_total"] != 0 {
		t.Errorf("after Run: %v", got)
	}
}

// gather flattens the registry's counters and gauges to "name{labels}" → value.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestRunRefusesBadOptions(t *testing.T) {
	reg := testRegistry(t)
	cases := map[string]Options{
		"no broker":    {Registry: reg, Trucks: 1},
		"no registry":  {Broker: "tcp://127.0.0.1:1", Trucks: 1},
		"no devices":   {Broker: "tcp://127.0.0.1:1", Registry: reg},
		"negative":     {Broker: "tcp://127.0.0.1:1", Registry: reg, Trucks: -1},
		"too many":     {Broker: "tcp://127.0.0.1:1", Registry: reg, Trucks: 7, DepthPoints: 3},
		"bad interval": {Broker: "tcp://127.0.0.1:1", Registry: reg, Trucks: 1, FixInterval: -time.Second},
		"bad duration": {Broker: "tcp://127.0.0.1:1", Registry: reg, Trucks: 1, Duration: -time.Second},
	}
	for name, o := range cases {
		err := Run(context.Background(), o)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if name == "too many" && (!strings.Contains(err.Error(), `7 trucks asked, registry has 6`) || !strings.Contains(err.Error(), "3 depth points asked, registry has 2")) {
			t.Errorf("too many: %v", err)
		}
	}
}

// With Duration set and no broker to be had, Run keeps retrying the connects
// quietly and returns nil when the time is up.
func TestRunDurationWithoutBroker(t *testing.T) {
	reg := testRegistry(t)
	metrics := prometheus.NewRegistry()
	err := Run(context.Background(), Options{Broker: "tcp://127.0.0.1:1", Registry: reg, RainGauges: 2,
		Duration: 300 * time.Millisecond, Registerer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if got := gather(t, metrics); got["urbanwatch_sim_connect_failures_total"] < 1 || got["urbanwatch_sim_connected_devices"] != 0 {
		t.Fatalf("metrics %v", got)
	}
}
