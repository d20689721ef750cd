package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/urbanwatch/urbanwatch/cluster"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/citytest"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/simulators"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestClusterKill9 runs three urbanwatch nodes on a three-node NATS
// cluster, sends a small city's trucks through their brokers, and kills -9
// one urbanwatch node and then the record stream's NATS leader while the
// records flow. Every record a device had acknowledged must be in InfluxDB
// exactly once per (device, seq), and the alert stream must hold exactly
// the events one engine derives from the same records, once each; the
// alerting node must have them all in its journal. With
// URBANWATCH_KEEP_LOGS=DIR the three nodes' logs are copied to DIR.
func TestClusterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-system test")
	}
	began := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%5.1fs "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	nc3 := testenv.StartNATSCluster(t, 3)
	db := testenv.Influxd(t)
	bin := buildBinary(t)
	dir := t.TempDir()

	const trucks = 16
	reg, city, err := citytest.Load(trucks)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(citytest.Registry(trucks)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := simulators.WriteCity(dir, city); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadCity(filepath.Join(dir, simulators.CityFile), reg); err != nil {
		t.Fatalf("the city written does not load: %v", err)
	}

	var nodes []*service
	var brokers []string
	for i := range 3 {
		mqttPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		os.WriteFile(cfg, fmt.Appendf(nil, `
registry: registry.yaml
city: %s
data_dir: data%d
log: {level: info, format: json}
http: {listen: "127.0.0.1:%d"}
mqtt: {listen: "127.0.0.1:%d"}
influx: {url: %q, database: %q, batch_lines: 500}
cluster:
  nats: [%s]
  node: n%d
  partitions: 16
  lease_ttl: 3s
  checkpoint_every: 1s
  ack_wait: 3s
  alerting: %t
`, simulators.CityFile, i, httpPort, mqttPort, db.URL(), testenv.TestDatabase,
			strings.ReplaceAll(nc3.URLs(), ",", ", "), i, i == 0), 0o600)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		s := &service{t: t, bin: bin, cfg: cfg, http: fmt.Sprintf("127.0.0.1:%d", httpPort), out: logf}
		nodes = append(nodes, s)
		brokers = append(brokers, fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort))
	}
	defer func() {
		for i, s := range nodes {
			s.out.Close()
			if d := os.Getenv("URBANWATCH_KEEP_LOGS"); d != "" {
				b, _ := os.ReadFile(s.out.Name())
				os.WriteFile(filepath.Join(d, fmt.Sprintf("node%d.log", i)), b, 0o644)
			}
			if t.Failed() {
				b, _ := os.ReadFile(s.out.Name())
				t.Logf("node %d log (tail):\n%s", i, tail(b, 4000))
			}
		}
	}()
	for _, s := range nodes {
		s.start()
		t.Cleanup(func() {
			if s.cmd.ProcessState == nil {
				s.kill9()
			}
		})
	}

	// Each truck sends its records in event-time order, its GPS terminal
	// and sensor box each on its own connection, one message in flight,
	// resending until acknowledged and moving to the next broker when one
	// fails: what a device with a persistent buffer does.
	secrets := map[string]string{}
	reg.AllDevices(func(d *config.Device, secret string) { secrets[d.ID] = secret })
	start := time.Now().Add(-time.Duration(citytest.TripSeconds+trucks+120) * time.Second).Truncate(time.Second)
	recs := citytest.Records(trucks, start)
	byTruck := map[string][]telemetry.Record{}
	for _, r := range recs {
		k := strings.TrimPrefix(strings.TrimPrefix(r.Device, "TG"), "TS")
		byTruck[k] = append(byTruck[k], r)
	}
	var acked atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, trucks)
	home := 0
	for _, rs := range byTruck {
		first := home % 3
		home++
		wg.Go(func() {
			devs := map[string]*failoverDevice{}
			defer func() {
				for _, d := range devs {
					d.close()
				}
			}()
			var buf []byte
			for i := range rs {
				r := &rs[i]
				d := devs[r.Device]
				if d == nil {
					d = &failoverDevice{id: r.Device, secret: secrets[r.Device], brokers: brokers, next: first}
					devs[r.Device] = d
				}
				buf = wire.Append(buf[:0], r, wire.UnixMilli)
				topic := "trucks/" + r.Device + "/" + r.Kind.String()
				if err := d.publish(ctx, topic, buf); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		})
	}
	total := int64(len(recs))
	testenv.WaitFor(t, 2*time.Minute, func() bool { return acked.Load() >= total/3 }, "a third acknowledged")
	nodes[1].kill9()
	step("node 1 killed at %d acknowledged", acked.Load())

	natsConn, err := nats.Connect(nc3.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer natsConn.Close()
	js, err := jetstream.New(natsConn)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, func() bool { return acked.Load() >= 2*total/3 }, "two thirds acknowledged")
	st, err := js.Stream(ctx, cluster.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
	nc3.Kill(nc3.Index(leader))
	step("NATS node %s (stream leader) killed at %d acknowledged", leader, acked.Load())

	wg.Wait()
	step("every record acknowledged")
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Every acknowledged record in InfluxDB, once per (device, seq).
	var gps, sens int64
	for _, r := range recs {
		if r.Kind == telemetry.KindGPS {
			gps++
		} else {
			sens++
		}
	}
	for _, m := range []struct {
		name, field string
		want        int64
	}{{"truck_gps", "lat", gps}, {"truck_sensors", "cover", sens}} {
		var got int64
		testenv.WaitFor(t, 2*time.Minute, func() bool {
			got, err = influx.CountPoints(ctx, db.URL(), testenv.TestDatabase, m.name, m.field)
			return err == nil && got >= m.want
		}, fmt.Sprintf("%d points of %s in InfluxDB", m.want, m.name))
		if got != m.want {
			t.Errorf("%s: InfluxDB holds %d points, want exactly %d", m.name, got, m.want)
		}
	}

	step("InfluxDB complete")
	// The alert stream against one engine over the same records.
	want, n, err := citytest.Replay(ctx, js, cluster.DefaultStream, city)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != total {
		t.Errorf("the record stream holds %d records; %d were acknowledged", n, total)
	}
	var got []string
	slices.Sort(want)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got, err = citytest.EventIDs(ctx, js, cluster.DefaultOutputStream)
		if err == nil && len(got) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(got)
			t.Fatalf("after 1m the alert stream holds %d of %d events (%v); missing %v", len(got), len(want), err, missing(want, got))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("alert stream holds %d events\n%v\nwant (one engine over the same records) %d\n%v", len(got), got, len(want), want)
	}
	if len(want) < trucks {
		t.Errorf("only %d events; the city should raise at least %d", len(want), trucks)
	}
	testenv.WaitFor(t, time.Minute, func() bool {
		return metric(t, nodes[0].http, "urbanwatch_cluster_alerts_bridged_total") >= float64(len(want))
	}, "the alerting node journaling every event")
	step("%d records, %d events; node 0 journaled %v", total, len(want),
		metric(t, nodes[0].http, "urbanwatch_cluster_alerts_bridged_total"))
	for _, i := range []int{0, 2} {
		step("node %d: %v records evaluated, %v partitions, %v re-derived events suppressed after the takeover", i,
			metric(t, nodes[i].http, "urbanwatch_cluster_rules_records_total"),
			metric(t, nodes[i].http, "urbanwatch_cluster_rules_partitions"),
			metric(t, nodes[i].http, "urbanwatch_cluster_rules_suppressed_total"))
		nodes[i].stop()
	}
}

// metric reads one unlabelled sample from a node's /metrics (-1 if absent).
func metric(t *testing.T, addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// failoverDevice publishes at QoS 1 through one broker at a time, moving
// to the next when a publish is not acknowledged.
type failoverDevice struct {
	id, secret string
	brokers    []string
	next       int
	c          paho.Client
}

func (d *failoverDevice) connect(ctx context.Context) {
	for ctx.Err() == nil {
		url := d.brokers[d.next%len(d.brokers)]
		d.next++
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(d.id).
			SetUsername(d.id).SetPassword(d.secret).SetProtocolVersion(4).SetAutoReconnect(false).
			SetConnectTimeout(2 * time.Second).SetWriteTimeout(2 * time.Second))
		if tok := c.Connect(); tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
			d.c = c
			return
		}
		time.Sleep(50 * time.Millisecond) // back-off between connection attempts
	}
}

func (d *failoverDevice) publish(ctx context.Context, topic string, payload []byte) error {
	for ctx.Err() == nil {
		if d.c == nil {
			d.connect(ctx)
			continue
		}
		tok := d.c.Publish(topic, 1, false, payload)
		if tok.WaitTimeout(6*time.Second) && tok.Error() == nil && d.c.IsConnectionOpen() {
			return nil
		}
		d.close()
	}
	return fmt.Errorf("%s: %w", d.id, ctx.Err())
}

func (d *failoverDevice) close() {
	if d.c != nil {
		d.c.Disconnect(0)
		d.c = nil
	}
}

// missing returns the elements of want (sorted) not in got (sorted).
func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			out = append(out, w)
		}
	}
	return out
}
