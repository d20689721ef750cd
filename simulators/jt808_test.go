package simulators

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/ingest/jt808"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

type countStore struct {
	mu    sync.Mutex
	kinds map[telemetry.Kind]int
}

type nowWaiter struct{}

var doneCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (nowWaiter) Wait() error           { return nil }
func (nowWaiter) Done() <-chan struct{} { return doneCh }

func (s *countStore) Submit(p []byte) ingest.Waiter {
	var r telemetry.Record
	if err := r.UnmarshalBinary(p); err == nil {
		s.mu.Lock()
		s.kinds[r.Kind]++
		s.mu.Unlock()
	}
	return nowWaiter{}
}

// TestRunJT808 plays trucks over JT/T 808 against the gateway: every fix
// arrives through ingest as a record, with the trucks' sensor states.
func TestRunJT808(t *testing.T) {
	reg, err := config.ParseRegistry("registry.yaml", []byte(
		"fleets:\n  - {prefix: WF-T, class: trucks, count: 3, width: 5, key: sim-jt808-test-key-01, jt808: {phone_prefix: '0139'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countStore{kinds: map[telemetry.Kind]int{}}
	in, err := ingest.New(ingest.Options{Devices: reg, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := jt808.New(jt808.Options{Addr: "127.0.0.1:0", Terminals: reg, Ingest: in})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	err = Run(context.Background(), Options{JT808: gw.Addr(), Registry: reg, Trucks: 3, Duration: 3500 * time.Millisecond, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.kinds[telemetry.KindGPS] < 6 || store.kinds[telemetry.KindSensors] < 6 {
		t.Fatalf("records by kind %v: want about 3 fixes and sensor states from each of 3 trucks", store.kinds)
	}
	if _, err := (Options{JT808: "x", Registry: reg, Trucks: 1, FixInterval: 500 * time.Millisecond}).withDefaults(); err == nil {
		t.Fatal("a sub-second fix interval was accepted for JT/T 808")
	}
}
