package web

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// BenchmarkStreamFanout measures what the live stream costs per connected
// console: every truck of a 2,000-truck city moves, one flush encodes the
// changes and every console receives them over a real HTTP connection (an
// SSE stream on loopback, read by a client like a browser's EventSource).
// One op is one flush delivered to every console; ns/console is the cost
// each console adds, bytes/event what one console receives per second.
func BenchmarkStreamFanout(b *testing.B) {
	for _, enc := range []string{"gzip", "identity"} {
		for _, consoles := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("trucks=2000/%s/consoles=%d", enc, consoles), func(b *testing.B) {
				fanout(b, enc, consoles)
			})
		}
	}
}

func fanout(b *testing.B, enc string, consoles int) {
	{
		{
			r := newBenchRig(b, 2000)
			streams := make([]*benchStream, consoles)
			for i := range streams {
				streams[i] = r.open(b, enc)
			}
			now := r.clk.Now()
			rnd := rand.New(rand.NewPCG(1, 2)) // positions as scattered as a city's
			var wg sync.WaitGroup
			var bytes int
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer() // the records' own cost is BenchmarkObserve's
				ts := now.Add(time.Duration(n+1) * time.Second)
				for _, dev := range r.devices {
					rec := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: dev, Seq: uint64(n), TS: ts, Received: ts},
						Fix: telemetry.Fix{Lat: 36.5 + rnd.Float64()*0.4, Lon: 118.9 + rnd.Float64()*0.5, SpeedKmh: float64(rnd.IntN(600)) / 10,
							Heading: float64(rnd.IntN(360)), Sats: 10, Valid: true}}
					r.srv.Observe(&rec)
				}
				b.StartTimer()
				wg.Add(consoles)
				for _, s := range streams {
					s.want <- &wg
				}
				r.flush <- ts
				wg.Wait()
			}
			b.StopTimer()
			for _, s := range streams {
				bytes = max(bytes, s.last)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(consoles), "ns/console")
			b.ReportMetric(float64(bytes), "bytes/event")
			b.ReportMetric(float64(streams[0].wire.Load())/float64(b.N), "wire-bytes/event")
		}
	}
}

type benchRig struct {
	*rig
	devices []string
}

func newBenchRig(b *testing.B, trucks int) *benchRig {
	r := newRigTB(b, trucks)
	br := &benchRig{rig: r}
	for _, tr := range r.city.Trucks {
		br.devices = append(br.devices, tr.Devices[0])
	}
	return br
}

// benchStream is one console's stream: for each flush it is told about
// (want), it reads one trucks event and marks it done.
type benchStream struct {
	want chan *sync.WaitGroup
	last int
	wire atomic.Int64 // bytes read off the connection
}

// countingConn counts what a connection reads.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (r *benchRig) open(b *testing.B, enc string) *benchStream {
	br := r.browserTB(b).signIn("insp")
	s := &benchStream{want: make(chan *sync.WaitGroup, 1)}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{c, &s.wire}, err
	}}
	client := &http.Client{Jar: br.c.Jar, Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, br.base+"/console/api/stream", nil)
	req.Header.Set("Accept-Encoding", enc)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %v", err)
	}
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if body, err = gzip.NewReader(resp.Body); err != nil {
			b.Fatal(err)
		}
	} else if enc == "gzip" {
		b.Fatal("stream not compressed")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := bufio.NewReaderSize(body, 1<<20)
		for wg := range s.want {
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					wg.Done()
					return
				}
				if strings.HasPrefix(line, "data: {\"t\"") {
					s.last = len(line)
					wg.Done()
					break
				}
			}
		}
	}()
	b.Cleanup(func() { close(s.want); cancel(); resp.Body.Close(); <-done })
	return s
}

// BenchmarkObserve is what the console adds to every record the rules
// evaluate: the live map.
func BenchmarkObserve(b *testing.B) {
	r := newBenchRig(b, 2000)
	now := r.clk.Now()
	recs := make([]telemetry.Record, len(r.devices))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		i := n % len(recs)
		ts := now.Add(time.Duration(n/len(recs)+1) * time.Second)
		recs[i] = telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: r.devices[i], Seq: uint64(n), TS: ts, Received: ts},
			Fix: telemetry.Fix{Lat: 36.6 + float64(i)*1e-4, Lon: 119.0 + float64(n)*1e-7, SpeedKmh: 30, Heading: 90, Sats: 10, Valid: true}}
		r.srv.Observe(&recs[i])
	}
}
