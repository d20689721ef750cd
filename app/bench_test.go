package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/paulmach/orb"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/loadgen"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// benchApp runs the whole service in-process — embedded broker, ingest, spool
// with real fsync, InfluxDB writer — against an InfluxDB stand-in that accepts
// every write, so what is measured is urbanwatch's own cost. The writer's
// real drain rate against influxd is BenchmarkWriterDrain in storage/influx.
func benchApp(b *testing.B, devices int) (*App, []loadgen.Credential) {
	b.Helper()
	b.Cleanup(SpareFsyncProc())
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(sink.Close)
	nop := zerolog.Nop()
	a, reg := startApp(b, fmt.Sprintf("fleets:\n  - {prefix: B, class: trucks, count: %d, width: 6, key: bench-fleet-key-0123456}\n", devices),
		sink.URL, &nop)
	var creds []loadgen.Credential
	reg.AllDevices(func(d *config.Device, secret string) {
		creds = append(creds, loadgen.Credential{ID: d.ID, Secret: secret})
	})
	return a, creds
}

// BenchmarkIngestEndToEnd publishes QoS 1 GPS fixes over real TCP from one
// connection per device and counts PUBACKs: each PUBACK means the record is
// fsync'd in the spool. It fails if any message is lost (acked != sent, or
// fewer records accepted than acked).
func BenchmarkIngestEndToEnd(b *testing.B) {
	for _, c := range []struct {
		devices, window int
		goroutines      bool // the load generator's goroutine pair per connection, not its epoll reactor
	}{{1000, 1, false}, {1000, 1, true}, {5000, 1, false}, {1000, 8, false}, {200, 32, false}} {
		name := fmt.Sprintf("devices=%d/window=%d/loadgen=reactor", c.devices, c.window)
		if c.goroutines {
			name = fmt.Sprintf("devices=%d/window=%d/loadgen=goroutines", c.devices, c.window)
		}
		b.Run(name, func(b *testing.B) {
			a, creds := benchApp(b, c.devices)
			per := max(1, b.N/c.devices)
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), loadgen.Options{
				Addr: a.MQTTAddr(), Devices: creds, Messages: per, Window: c.window, AckTimeout: time.Minute,
				Goroutines: c.goroutines,
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			want := int64(per * c.devices)
			accepted := a.ingester.Accepted()
			if res.Sent != want || res.Acked != want || int64(accepted) != want {
				b.Fatalf("LOSS: sent %d, acked %d, accepted into the spool %v, want %d", res.Sent, res.Acked, accepted, want)
			}
			b.ReportMetric(float64(res.Acked)/res.Elapsed.Seconds(), "msg/s")
			b.ReportMetric(float64(res.Latency.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res.Latency.P99.Microseconds())/1000, "p99-ms")
			n, secs := histogramTotals(b, a, "urbanwatch_spool_commit_seconds")
			b.ReportMetric(float64(want)/n, "records/fsync")
			b.ReportMetric(secs/n*1000, "fsync-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkMemoryPerThousandDevices connects idle authenticated devices and
// reports the heap and stack the service holds per 1,000 of them. The
// clients are bare TCP connections in the same process (about 1 KiB each of
// the figure). It measures once, whatever b.N: the figure is a size, not a
// rate.
func BenchmarkMemoryPerThousandDevices(b *testing.B) {
	const n = 2000
	{
		a, creds := benchApp(b, n)
		before := inUse()
		conns := make([]net.Conn, 0, n)
		for _, c := range creds {
			conn, err := mqttConnect(a.MQTTAddr(), c)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, conn)
		}
		after := inUse()
		b.ReportMetric(float64(after-before)/n*1000/(1<<20), "MiB/1000-devices")
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(0, "ns/op")
}

// appHistogram returns the app's histogram name.
func appHistogram(tb testing.TB, a *App, name string) *dto.Histogram {
	tb.Helper()
	mfs, err := a.metrics.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	tb.Fatalf("no histogram %s", name)
	return nil
}

// histogramTotals returns the count and sum of the app's histogram name.
func histogramTotals(tb testing.TB, a *App, name string) (count, sum float64) {
	h := appHistogram(tb, a, name)
	return float64(h.GetSampleCount()), h.GetSampleSum()
}

// histogramOver returns how many observations of the app's histogram name
// exceeded the smallest bucket bound at or above v.
func histogramOver(tb testing.TB, a *App, name string, v float64) float64 {
	h := appHistogram(tb, a, name)
	for _, bk := range h.GetBucket() {
		if bk.GetUpperBound() >= v {
			return float64(h.GetSampleCount() - bk.GetCumulativeCount())
		}
	}
	return 0
}

func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// mqttConnect opens an MQTT 3.1.1 session and waits for a successful CONNACK.
func mqttConnect(addr string, c loadgen.Credential) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 600,
			ClientIdentifier: c.ID, UsernameFlag: true, PasswordFlag: true, Username: []byte(c.ID), Password: []byte(c.Secret)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		return nil, err
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	ack := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		return nil, fmt.Errorf("connack %x: %v", ack, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// BenchmarkPublishToAlert measures, end to end over real MQTT, the time from
// publishing the message that completes a violation to an operator console
// receiving the alert, while the service takes 20,000 msg/s. 1,600 trucks
// with permits drive their route (every rule evaluated, nothing raised);
// 400 probe trucks without a permit drive too, with device timestamps one
// second apart, so their 31st fix completes no_permit's 30 s dwell. Each
// probe's alert latency is that fix's publish to the alert's arrival.
func BenchmarkPublishToAlert(b *testing.B) {
	const background, probes, rate = 1600, 400, 20000
	b.Cleanup(SpareFsyncProc())
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(sink.Close)
	nop := zerolog.Nop()
	reg := fmt.Sprintf("fleets:\n  - {prefix: B, class: trucks, count: %d, width: 5, key: bench-fleet-key-0123456}\n"+
		"  - {prefix: P, class: trucks, count: %d, width: 5, key: bench-probe-key-01234567}\n"+
		"devices:\n  - {id: console-1, class: operators, secret_hash: %q}\n",
		background, probes, config.HashSecret("console-secret"))
	a, registry := startAppCity(b, reg, sink.URL, &nop, func(tb testing.TB, reg *config.Registry) *config.City {
		return circleCity(tb, reg, background, probes)
	})
	var creds []loadgen.Credential
	registry.AllDevices(func(d *config.Device, secret string) {
		if d.Class == "trucks" {
			creds = append(creds, loadgen.Credential{ID: d.ID, Secret: secret})
		}
	})
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var published sync.Map // probe device → time its 31st fix was published
	var mu sync.Mutex
	var lat []time.Duration
	got := make(chan struct{}, probes)
	console := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID("console-1").
		SetUsername("console-1").SetPassword("console-secret").SetProtocolVersion(4))
	if tok := console.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("console: %v", tok.Error())
	}
	defer console.Disconnect(50)
	console.Subscribe("urbanwatch/alerts/#", 1, func(_ paho.Client, m paho.Message) {
		now := time.Now()
		var al telemetry.Alert
		if json.Unmarshal(m.Payload(), &al) != nil || al.Rule != "no_permit" || al.State != telemetry.AlertFiring {
			return
		}
		if t, ok := published.Load(al.Subject.Device); ok {
			mu.Lock()
			lat = append(lat, now.Sub(t.(time.Time)))
			mu.Unlock()
			got <- struct{}{}
		}
	}).Wait()
	// Probe i waits (speed 0) for its first i%25 fixes, so the probes'
	// alerts spread over the run as a city's would, instead of 400 at once.
	payload := func(dev string, seq int, now time.Time) (string, []byte) {
		if dev[0] != 'P' {
			return loadgen.DefaultPayload(dev, seq, now)
		}
		n, _ := strconv.Atoi(dev[1:])
		wait := n % 25
		if seq == wait+30 {
			published.Store(dev, time.Now())
		}
		at := base.Add(time.Duration(seq) * time.Second)
		if seq >= wait {
			return loadgen.DefaultPayload(dev, seq, at)
		}
		r := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Seq: uint64(seq), TS: at},
			Fix: telemetry.Fix{Lat: 36.70, Lon: 119.15, Sats: 10, Valid: true}}
		return telemetry.Topic(dev, telemetry.KindGPS), wire.Append(nil, &r, wire.RFC3339)
	}
	b.ResetTimer()
	for range b.N {
		res, err := loadgen.Run(context.Background(), loadgen.Options{Addr: a.MQTTAddr(), Devices: creds,
			Messages: 60, Window: 8, Rate: rate, Payload: payload, AckTimeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Acked)/res.Elapsed.Seconds(), "msg/s")
		break // one run: the probes' alerts fire once
	}
	for range probes {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatalf("only %d of %d probe alerts arrived", len(lat), probes)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	// The disk's own tail, which every alert waits on twice (spool and
	// journal): group commits of the telemetry spool slower than 25 ms.
	b.ReportMetric(histogramOver(b, a, "urbanwatch_spool_commit_seconds", 0.025), "fsyncs>25ms")
	b.ReportMetric(0, "ns/op")
}

// circleCity permits the background trucks (B…) to drive the circle
// loadgen.DefaultPayload draws around Weifang's centre, and gives the
// probes (P…) no permit.
func circleCity(tb testing.TB, reg *config.Registry, background, probes int) *config.City {
	tb.Helper()
	var ring orb.LineString
	for k := 0; k <= 360; k += 3 {
		a := float64(k) * math.Pi / 180
		ring = append(ring, orb.Point{119.16 + 0.012*math.Cos(a), 36.71 + 0.01*math.Sin(a)})
	}
	c := &config.City{
		Companies: []config.Company{{ID: "C1", Name: "bench"}},
		Sites:     []config.Site{{ID: "CS", Name: "site", Kind: config.SiteConstruction, Area: square(-5000, -5000, 200)}},
		Routes:    []config.Route{{ID: "R1", Name: "ring", Path: ring}},
	}
	for i := 1; i <= background; i++ {
		plate, dev := fmt.Sprintf("鲁G·B%04d", i), fmt.Sprintf("B%05d", i)
		c.Trucks = append(c.Trucks, config.Truck{Plate: plate, Company: "C1", Devices: []string{dev}})
		c.Permits = append(c.Permits, config.Permit{ID: "P-" + dev, Truck: plate,
			ValidFrom: config.Date{Year: 2020, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2040, Month: 12, Day: 31},
			Windows: []config.Window{{Start: 0, End: 24 * 3600}}, Origins: []string{"CS"}, Routes: []string{"R1"}})
	}
	for i := 1; i <= probes; i++ {
		c.Trucks = append(c.Trucks, config.Truck{Plate: fmt.Sprintf("鲁V·P%04d", i), Company: "C1",
			Devices: []string{fmt.Sprintf("P%05d", i)}})
	}
	if err := c.Validate(reg); err != nil {
		tb.Fatal(err)
	}
	return c
}
