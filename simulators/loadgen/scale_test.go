package loadgen

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestScale is an opt-in benchmark against a running broker that lets any
// client in:
//
//	URBANWATCH_LOADGEN_ADDR=127.0.0.1:1883 URBANWATCH_LOADGEN_CONNS=1000 \
//	URBANWATCH_LOADGEN_MESSAGES=500 go test -run TestScale -v ./simulators/loadgen/
func TestScale(t *testing.T) {
	addr := os.Getenv("URBANWATCH_LOADGEN_ADDR")
	if addr == "" {
		t.Skip("set URBANWATCH_LOADGEN_ADDR to a broker's host:port")
	}
	conns, _ := strconv.Atoi(os.Getenv("URBANWATCH_LOADGEN_CONNS"))
	msgs, _ := strconv.Atoi(os.Getenv("URBANWATCH_LOADGEN_MESSAGES"))
	window, _ := strconv.Atoi(os.Getenv("URBANWATCH_LOADGEN_WINDOW"))
	if msgs <= 0 {
		msgs = 100
	}
	devs := make([]Credential, max(conns, 1))
	for i := range devs {
		devs[i] = Credential{ID: fmt.Sprintf("WF-T%05d", i+1), Secret: "x"}
	}
	res, err := Run(context.Background(), Options{Addr: addr, Devices: devs, Messages: msgs, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections: sent %d, acked %d in %v = %.0f msg/s; latency p50 %v p99 %v max %v; errors %d",
		len(devs), res.Sent, res.Acked, res.Elapsed, float64(res.Acked)/res.Elapsed.Seconds(),
		res.Latency.P50, res.Latency.P99, res.Latency.Max, res.Errors)
}
