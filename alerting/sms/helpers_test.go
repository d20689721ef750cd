package sms

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is 16:30 UTC on 1 July 2026: already 2 July in Weifang (UTC+8), so
// a signer that dates by local time instead of UTC is caught.
var testNow = time.Date(2026, 7, 1, 16, 30, 5, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// shanghai is Asia/Shanghai without depending on the system's tzdata.
var shanghai = time.FixedZone("CST", 8*3600)

// uncoveredLoad is a typical rule template.
var uncoveredLoad = Template{
	Name: "uncovered_load",
	Vars: []Var{
		{Name: "plate", Type: VarString, Max: 10},
		{Name: "site", Type: VarString},
		{Name: "time", Type: VarTime},
	},
	Text: map[string]string{
		"zh-CN": "{plate}于{time}驶离{site}未覆盖篷布，请核查。",
		"en":    "Truck {plate} left {site} uncovered at {time}; please check.",
	},
}

// testMessage renders uncoveredLoad into a message for +8613800000000.
func testMessage(t *testing.T, code string) Message {
	t.Helper()
	params, text, err := uncoveredLoad.Render("zh-CN", map[string]any{
		"plate": "鲁G12345",
		"site":  "寒亭区 开元街道 #3*工地",
		"time":  testNow,
	}, shanghai)
	if err != nil {
		t.Fatal(err)
	}
	return Message{
		ID:       "alert-42",
		To:       "+8613800000000",
		Template: uncoveredLoad.Name,
		Code:     code,
		Params:   params,
		Text:     text,
		Lang:     "zh-CN",
	}
}

// fixedServer answers every request with status, headers and body, and counts
// requests.
func fixedServer(t *testing.T, status int, header http.Header, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// blockingServer never answers until the test ends.
func blockingServer(t *testing.T) *httptest.Server {
	t.Helper()
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-unblock
	}))
	t.Cleanup(srv.Close)                 // runs second: waits for handlers
	t.Cleanup(func() { close(unblock) }) // runs first: lets them return
	return srv
}

// closedURL is the URL of a server that no longer listens.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u + "/"
}

// shortClient times out long before any test would.
func shortClient() *http.Client { return &http.Client{Timeout: 50 * time.Millisecond} }

// wantClass checks an error's classification and its *Error.
func wantClass(t *testing.T, err error, provider string, retry bool, after time.Duration) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Provider != provider {
		t.Errorf("Provider = %q, want %q", e.Provider, provider)
	}
	if !strings.HasPrefix(err.Error(), "sms "+provider+": ") {
		t.Errorf("error %q does not start with the provider", err)
	}
	gotRetry, gotAfter := Classify(err)
	if gotRetry != retry || gotAfter != after {
		t.Errorf("Classify(%v) = %v, %v; want %v, %v", err, gotRetry, gotAfter, retry, after)
	}
	return e
}

// noSecret fails when err's text contains any of secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains the secret %q", err, s)
		}
	}
}
