//go:build unix

package simulators

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/internal/testbroker"
)

// TestScale runs N trucks at 1 Hz and reports the acknowledged message rate
// and the simulator's CPU and memory. Opt-in:
//
//	URBANWATCH_SIM_SCALE=20000 go test -run TestScale -v -timeout 10m ./simulators/
//
// By default the broker is an in-process mochi (its CPU and memory are then
// counted too); URBANWATCH_SIM_BROKER=tcp://host:1883 uses an external one
// that lets any client in. URBANWATCH_SIM_HEAPPROFILE=file writes a heap
// profile at the end of the measurement, URBANWATCH_SIM_CPUPROFILE=file a CPU
// profile of it.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("URBANWATCH_SIM_SCALE"))
	if n <= 0 {
		t.Skip("set URBANWATCH_SIM_SCALE to the number of trucks")
	}
	reg, err := config.ParseRegistry("scale.yaml", fmt.Appendf(nil,
		"fleets:\n  - {prefix: WF-T, class: trucks, count: %d, width: 5, key: scale-test-key-0123456789}\n", n))
	if err != nil {
		t.Fatal(err)
	}
	broker := os.Getenv("URBANWATCH_SIM_BROKER")
	if broker == "" {
		broker = "tcp://" + testbroker.StartCounting(t, reg).Addr
	}
	metrics := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Broker: broker, Registry: reg, Trucks: n, Seed: 1, ConnectRate: 2000,
			Registerer: metrics, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	}()
	t.Logf("connecting %d trucks to %s", n, broker)
	for c0 := time.Now(); gather(t, metrics)["urbanwatch_sim_connected_devices"] < float64(n); {
		if time.Since(c0) > 5*time.Minute {
			t.Fatal("not all trucks connected after 5 minutes")
		}
		time.Sleep(time.Second) // polling a load test's progress, not synchronising
	}
	time.Sleep(5 * time.Second) // let the groups' first ticks settle
	if path := os.Getenv("URBANWATCH_SIM_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	m0, u0, w0 := gather(t, metrics), cpu(), time.Now()
	time.Sleep(30 * time.Second)
	m1, u1, w1 := gather(t, metrics), cpu(), time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if path := os.Getenv("URBANWATCH_SIM_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	secs := w1.Sub(w0).Seconds()
	rate := func(k string) float64 { return (m1[k] - m0[k]) / secs }
	t.Logf("connected %.0f; acked gps %.0f/s (want %d), sensors %.0f/s; errors %.0f; CPU %.2f cores; goroutines %d; heap %d MB, sys %d MB",
		m1["urbanwatch_sim_connected_devices"], rate(`urbanwatch_sim_published_total{kind="gps"}`), n,
		rate(`urbanwatch_sim_published_total{kind="sensors"}`), m1["urbanwatch_sim_publish_errors_total"],
		(u1-u0).Seconds()/secs, runtime.NumGoroutine(), ms.HeapAlloc>>20, ms.Sys>>20)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
