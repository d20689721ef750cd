package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ackServer is the cheapest MQTT server Go's standard network stack allows: a
// goroutine per connection that answers CONNECT with a CONNACK and each QoS 1
// PUBLISH with its PUBACK at once, storing nothing. It measures the floor
// under BenchmarkIngestEndToEnd: what the load generator and the loopback cost
// on this machine before a broker does any work.
func ackServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveAcks(nc) })
		}
	})
	return ln.Addr().String()
}

// serveAcks acknowledges one connection's login and publishes until it ends.
func serveAcks(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 4096)
	var buf []byte
	for {
		fh, body, err := readPacket(br, buf)
		if err != nil {
			return
		}
		buf = body[:0]
		switch fh.Type {
		case packets.Connect:
			if _, err := nc.Write([]byte{packets.Connack << 4, 2, 0, 0}); err != nil {
				return
			}
		case packets.Publish:
			// The packet id follows the topic: 2 bytes of length, the topic.
			if len(body) < 2 {
				return
			}
			n := int(body[0])<<8 | int(body[1])
			if len(body) < 2+n+2 {
				return
			}
			id := body[2+n : 2+n+2]
			if _, err := nc.Write([]byte{packets.Puback << 4, 2, id[0], id[1]}); err != nil {
				return
			}
		case packets.Disconnect:
			return
		}
	}
}

// BenchmarkLoopbackFloor runs the load generator against ackServer: 1,000
// connections with one QoS 1 message in flight each, as in
// BenchmarkIngestEndToEnd's first case. The figure is the most msg/s any
// goroutine-per-connection Go broker could acknowledge here with the load
// generator on the same cores.
func BenchmarkLoopbackFloor(b *testing.B) {
	for _, c := range []struct {
		devices, window int
		goroutines      bool
	}{{1000, 1, false}, {1000, 1, true}} {
		name := "reactor"
		if c.goroutines {
			name = "goroutines"
		}
		b.Run(fmt.Sprintf("devices=%d/window=%d/%s", c.devices, c.window, name), func(b *testing.B) {
			addr := ackServer(b)
			devs := make([]Credential, c.devices)
			for i := range devs {
				devs[i] = Credential{ID: fmt.Sprintf("B%05d", i), Secret: "s"}
			}
			per := max(1, b.N/c.devices)
			b.ResetTimer()
			res, err := Run(context.Background(), Options{Addr: addr, Devices: devs, Messages: per, Window: c.window,
				AckTimeout: time.Minute, Goroutines: c.goroutines})
			b.StopTimer()
			if err != nil && !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			if want := int64(per * c.devices); res.Acked != want {
				b.Fatalf("acked %d of %d", res.Acked, want)
			}
			b.ReportMetric(float64(res.Acked)/res.Elapsed.Seconds(), "msg/s")
			b.ReportMetric(float64(res.Latency.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
