package app

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/loadgen"
)

// benchApp runs the whole service in-process — embedded broker, ingest, spool
// with real fsync, InfluxDB writer — against an InfluxDB stand-in that accepts
// every write, so what is measured is urbanwatch's own cost. The writer's
// real drain rate against influxd is BenchmarkWriterDrain in storage/influx.
func benchApp(b *testing.B, devices int) (*App, []loadgen.Credential) {
	b.Helper()
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
	for _, c := range []struct{ devices, window int }{{1000, 1}, {5000, 1}, {1000, 8}, {200, 32}} {
		b.Run(fmt.Sprintf("devices=%d/window=%d", c.devices, c.window), func(b *testing.B) {
			a, creds := benchApp(b, c.devices)
			per := max(1, b.N/c.devices)
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), loadgen.Options{
				Addr: a.MQTTAddr(), Devices: creds, Messages: per, Window: c.window, AckTimeout: time.Minute,
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
