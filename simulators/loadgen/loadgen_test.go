package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/internal/testbroker"
)

const registryYAML = `
fleets:
  - prefix: WF-T
    class: trucks
    count: 5
    width: 5
    key: loadgen-test-fleet-key-0123456789
`

func testRegistry(t *testing.T) *config.Registry {
	t.Helper()
	reg, err := config.ParseRegistry("test-registry.yaml", []byte(registryYAML))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func credentials(reg *config.Registry) []Credential {
	var cs []Credential
	reg.AllDevices(func(d *config.Device, secret string) {
		cs = append(cs, Credential{ID: d.ID, Secret: secret})
	})
	return cs
}

func TestRunAgainstMochi(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutines=%v", goroutines), func(t *testing.T) { testRunAgainstMochi(t, goroutines) })
	}
}

func testRunAgainstMochi(t *testing.T, goroutines bool) {
	reg := testRegistry(t)
	b := testbroker.Start(t, reg)
	devs := credentials(reg)
	const per = 200
	res, err := Run(context.Background(), Options{Addr: b.Addr, Devices: devs, Messages: per, Window: 8, Goroutines: goroutines})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := int64(len(devs) * per)
	if res.Sent != want || res.Acked != res.Sent || res.Errors != 0 {
		t.Fatalf("result %+v, want Sent = Acked = %d, no errors", res, want)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max || res.Elapsed <= 0 {
		t.Fatalf("latency %+v elapsed %v", res.Latency, res.Elapsed)
	}
	b.WaitFor(t, 10*time.Second, func(ms []testbroker.Message) bool { return len(ms) >= int(want) })
	count := map[string]int{}
	for _, m := range b.Messages() {
		if m.Topic != "trucks/"+m.Username+"/gps" || m.ClientID != m.Username || m.QoS != 1 {
			t.Fatalf("message %s from client %s user %s qos %d", m.Topic, m.ClientID, m.Username, m.QoS)
		}
		var fix struct {
			TS    string  `json:"ts"`
			Seq   *int    `json:"seq"`
			Lat   float64 `json:"lat"`
			Valid bool    `json:"valid"`
		}
		if err := json.Unmarshal(m.Payload, &fix); err != nil || fix.Seq == nil || fix.Lat < 36 || !fix.Valid {
			t.Fatalf("payload %s: %v", m.Payload, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, fix.TS); err != nil {
			t.Fatalf("ts %q: %v", fix.TS, err)
		}
		count[m.Username]++
	}
	for _, d := range devs {
		if count[d.ID] != per {
			t.Errorf("%s published %d, want %d", d.ID, count[d.ID], per)
		}
	}
}

func TestRunRateAndPayload(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutines=%v", goroutines), func(t *testing.T) { testRunRateAndPayload(t, goroutines) })
	}
}

func testRunRateAndPayload(t *testing.T, goroutines bool) {
	reg := testRegistry(t)
	b := testbroker.Start(t, reg)
	devs := credentials(reg)[:2]
	payload := func(dev string, seq int, now time.Time) (string, []byte) {
		return "gauges/" + dev + "/depth", fmt.Appendf(nil, `{"ts":%d,"seq":%d,"depth_cm":1.0}`, now.UnixMilli(), seq)
	}
	res, err := Run(context.Background(), Options{Addr: b.Addr, Devices: devs, Messages: 10, Window: 1, Rate: 200, Payload: payload,
		Goroutines: goroutines})
	if err != nil {
		t.Fatal(err)
	}
	// 20 messages at 200/s: the last goes out 95 ms after the first.
	if res.Acked != 20 || res.Elapsed < 90*time.Millisecond {
		t.Fatalf("result %+v", res)
	}
	for _, m := range b.Messages() {
		if !strings.HasSuffix(m.Topic, "/depth") {
			t.Fatalf("topic %s", m.Topic)
		}
	}
}

func TestRunRefusedLogin(t *testing.T) {
	reg := testRegistry(t)
	b := testbroker.Start(t, reg)
	devs := credentials(reg)[:2]
	devs[1].Secret = "wrong"
	res, err := Run(context.Background(), Options{Addr: b.Addr, Devices: devs, Messages: 3})
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), devs[1].ID) {
		t.Fatalf("err = %v, want a refused connection of %s", err, devs[1].ID)
	}
	if res.Errors != 1 || res.Sent != 3 || res.Acked != 3 {
		t.Fatalf("result %+v, want the good device's 3 messages and 1 error", res)
	}
	if b.Refused() != 1 {
		t.Fatalf("broker refused %d logins", b.Refused())
	}
}

func TestRunDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res, err := Run(context.Background(), Options{Addr: addr, Devices: []Credential{{"a", "b"}}, Messages: 1})
	if err == nil || res.Errors != 1 {
		t.Fatalf("err = %v, result %+v; want a dial error", err, res)
	}
}

// fakeBroker accepts one connection, acknowledges the login, and answers the
// first PUBLISH with a PUBACK for a wrong id followed by the right one.
func fakeBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if fh, _, err := readPacket(br, nil); err != nil || fh.Type != packets.Connect {
			return // not a CONNECT
		}
		nc.Write([]byte{packets.Connack << 4, 2, 0, 0})
		fh, body, err := readPacket(br, nil)
		if err != nil || fh.Type != packets.Publish {
			return
		}
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
		if pk.PublishDecode(body) != nil {
			return
		}
		id := pk.PacketID
		nc.Write([]byte{packets.Puback << 4, 2, byte((id + 100) >> 8), byte(id + 100)})
		nc.Write([]byte{packets.Puback << 4, 2, byte(id >> 8), byte(id)})
		readPacket(br, nil) // DISCONNECT
	}()
	return ln.Addr().String()
}

func TestRunUnknownPuback(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutines=%v", goroutines), func(t *testing.T) { testRunUnknownPuback(t, goroutines) })
	}
}

func testRunUnknownPuback(t *testing.T, goroutines bool) {
	addr := fakeBroker(t)
	res, err := Run(context.Background(), Options{Addr: addr, Devices: []Credential{{"WF-T00001", "s"}}, Messages: 1, Goroutines: goroutines})
	if err == nil || !strings.Contains(err.Error(), "not outstanding") {
		t.Fatalf("err = %v, want the unknown PUBACK reported", err)
	}
	if res.Sent != 1 || res.Acked != 1 || res.Errors != 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc // never answers the CONNECT
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Addr: ln.Addr().String(), Devices: []Credential{{"a", "b"}}, Messages: 1})
		done <- err
	}()
	nc := <-accepted
	defer nc.Close()
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{},
		{Addr: "x"},
		{Addr: "x", Devices: []Credential{{"a", "b"}}},
		{Addr: "x", Devices: []Credential{{"a", "b"}}, Messages: 1, Window: 70000},
		{Addr: "x", Devices: []Credential{{"a", "b"}}, Messages: 1, Rate: -1},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted", o)
		}
	}
}

func TestHistogram(t *testing.T) {
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 123456789, 1 << 62} {
		i := bucketOf(v)
		if lo, hi := bucketLow(i), bucketLow(i+1); v < lo || v >= hi || float64(hi-lo) > float64(max(v, 16))/8 {
			t.Errorf("value %d in bucket %d [%d, %d)", v, i, lo, hi)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	within := func(got, want time.Duration) bool { return got >= want && float64(got) <= float64(want)*1.07 }
	if p := h.quantile(0.5); !within(p, 500*time.Microsecond) {
		t.Errorf("p50 %v", p)
	}
	if p := h.quantile(0.99); !within(p, 990*time.Microsecond) {
		t.Errorf("p99 %v", p)
	}
	if h.max() != time.Millisecond || h.quantile(1) != time.Millisecond {
		t.Errorf("max %v q1 %v", h.max(), h.quantile(1))
	}
}
