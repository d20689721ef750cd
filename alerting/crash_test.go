package alerting

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The crash tests run a Manager in a child process (this test binary again,
// see TestMain) and kill it with SIGKILL at a chosen point, then
// start a Manager on the same store the way serve does after a crash.

const (
	crashDirEnv  = "URBANWATCH_CRASH_DIR"
	crashURLEnv  = "URBANWATCH_CRASH_GATEWAY"
	crashModeEnv = "URBANWATCH_CRASH_MODE" // decide: stop before sending; send: stop while sending
)

var crashStart = at(0, 21, 0)

// crashEvent is the journal record both processes apply.
func crashEvent() *telemetry.Alert {
	return truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, crashStart, crashStart)
}

func crashManager(t testing.TB, dir, gateway string) *Manager {
	t.Helper()
	mg, err := openCrash(dir, gateway, loadSettings(t, testAlerting))
	if err != nil {
		t.Fatal(err)
	}
	return mg
}

// openCrash opens the Manager both processes run, sending through a
// webhook gateway, its clock stopped at crashStart.
func openCrash(dir, gateway string, cfg *config.Alerting) (*Manager, error) {
	s, err := sms.NewWebhook(sms.WebhookOptions{URL: gateway, Secret: "crash-test-secret"})
	if err != nil {
		return nil, err
	}
	return New(Options{Dir: dir, Config: cfg, City: testCity(), SMS: s,
		Now: func() time.Time { return crashStart }, Logger: zerolog.Nop()})
}

// TestMain runs the child of the crash tests when asked to, else the tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild decides, says so on stdout, optionally starts sending, and
// waits to be killed.
func crashChild(dir string) {
	cfgPath := dir + ".alerting.yaml"
	if err := os.WriteFile(cfgPath, []byte(testAlerting), 0o644); err != nil {
		panic(err)
	}
	cfg, err := config.LoadAlerting(cfgPath, testCity())
	if err != nil {
		panic(err)
	}
	mg, err := openCrash(dir, os.Getenv(crashURLEnv), cfg)
	if err != nil {
		panic(err)
	}
	if err := mg.Apply([]*telemetry.Alert{crashEvent()}); err != nil {
		panic(err)
	}
	fmt.Println("decided")
	if os.Getenv(crashModeEnv) == "send" {
		mg.Dispatch(context.Background())
	}
	select {} // wait for SIGKILL
}

// gateway is a webhook SMS gateway that records each request's
// idempotency key; block makes it hold requests until the test ends.
type gateway struct {
	mu       sync.Mutex
	keys     []string
	accepted map[string]int
	block    bool
	arrived  chan struct{}
	release  chan struct{}
}

func newGateway(t *testing.T, block bool) (*gateway, *httptest.Server) {
	g := &gateway{accepted: map[string]int{}, block: block, arrived: make(chan struct{}, 16), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID, To string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Idempotency-Key") != body.ID {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.keys = append(g.keys, body.ID)
		blocking := g.block
		g.mu.Unlock()
		if blocking {
			g.arrived <- struct{}{}
			<-g.release
			return
		}
		g.mu.Lock()
		g.accepted[body.ID]++
		g.mu.Unlock()
		w.Write([]byte(`{"id":"gw-` + body.ID + `"}`))
	}))
	t.Cleanup(func() { close(g.release); srv.Close() })
	return g, srv
}

func (g *gateway) unblock() { g.mu.Lock(); g.block = false; g.mu.Unlock() }

func (g *gateway) seen() ([]string, map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	acc := map[string]int{}
	for k, v := range g.accepted {
		acc[k] = v
	}
	return append([]string(nil), g.keys...), acc
}

// runChild starts the child and returns once it has decided.
func runChild(t *testing.T, dir, gatewayURL, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashURLEnv+"="+gatewayURL, crashModeEnv+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "decided" {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd
		}
	}
	t.Fatalf("the child stopped before deciding: %v", sc.Err())
	return nil
}

func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no flush
		t.Fatal(err)
	}
	cmd.Wait()
}

func TestKill9BetweenDecidingAndSending(t *testing.T) {
	dir := t.TempDir()
	gw, srv := newGateway(t, false)
	kill9(t, runChild(t, dir, srv.URL, "decide"))
	if keys, _ := gw.seen(); len(keys) != 0 {
		t.Fatalf("the gateway heard %d requests from a process killed before sending", len(keys))
	}

	mg := crashManager(t, dir, srv.URL)
	defer mg.Close()
	// The journal was not acknowledged: the event comes again.
	if err := mg.Apply([]*telemetry.Alert{crashEvent()}); err != nil {
		t.Fatal(err)
	}
	if _, err := mg.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := mg.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys, accepted := gw.seen()
	if len(keys) != 3 || len(accepted) != 3 {
		t.Fatalf("gateway requests %v: want exactly one for each of the 3 recipients", keys)
	}
	a, _ := mg.Get(crashEvent().ID)
	if got := states(a, ChannelSMS); got[NotifySent] != 3 || len(a.Notifications) != 3 {
		t.Errorf("after the restart: %v over %d notifications, want 3 sent", got, len(a.Notifications))
	}
}

func TestKill9DuringSendResendsWithTheSameKey(t *testing.T) {
	dir := t.TempDir()
	gw, srv := newGateway(t, true)
	cmd := runChild(t, dir, srv.URL, "send")
	select {
	case <-gw.arrived: // a request is at the gateway, its answer held back
	case <-time.After(time.Minute):
		t.Fatal("no request reached the gateway")
	}
	kill9(t, cmd)
	during, _ := gw.seen()
	gw.unblock()

	mg := crashManager(t, dir, srv.URL)
	defer mg.Close()
	a, _ := mg.Get(crashEvent().ID)
	uncertain := 0
	for _, e := range a.History {
		if strings.Contains(e.Text, "attempt was under way") {
			uncertain++
		}
	}
	// All three were handed to the gateway at once; the gateway saw some.
	if uncertain != 3 || len(during) == 0 || len(during) > 3 {
		t.Errorf("%d notifications recorded as uncertain, want the 3 in flight (the gateway saw %d)", uncertain, len(during))
	}
	if _, err := mg.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, accepted := gw.seen()
	if len(accepted) != 3 {
		t.Fatalf("accepted %v, want one message per recipient", accepted)
	}
	for _, k := range during {
		if accepted[k] != 1 {
			t.Errorf("the request cut by the crash (%s) was not sent again under its own key", k)
		}
	}
}
