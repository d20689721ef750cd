package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	webhookSecret = "webhook-secret-DO-NOT-LOG"
	webhookToken  = "tok-DO-NOT-LOG"
	bearer        = "Bearer bearer-DO-NOT-LOG"
)

func newTestWebhook(t *testing.T, u, secret string, client *http.Client) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookOptions{
		URL:        u,
		Secret:     secret,
		Headers:    map[string]string{"authorization": bearer, "X-Tenant": "weifang"},
		HTTPClient: client,
		Now:        fixedClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookSendSuccess(t *testing.T) {
	msg := testMessage(t, "SMS_123456789")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/sms/"+webhookToken || r.URL.Query().Get("v") != "1" {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		ts := strconv.FormatInt(testNow.Unix(), 10)
		for name, want := range map[string]string{
			"Content-Type":           "application/json",
			"Idempotency-Key":        "alert-42",
			"X-Urbanwatch-Timestamp": ts,
			"X-Urbanwatch-Signature": specWebhookSignature(webhookSecret, ts, body),
			"Authorization":          bearer,
			"X-Tenant":               "weifang",
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"id": "alert-42", "to": "+8613800000000", "template": "uncovered_load", "code": "SMS_123456789",
			"params": []any{
				map[string]any{"name": "plate", "value": "鲁G12345"},
				map[string]any{"name": "site", "value": "寒亭区 开元街道 #3*工地"},
				map[string]any{"name": "time", "value": "00:30"},
			},
			"text": msg.Text, "lang": "zh-CN",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v\nwant %v", got, want)
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"id":"gw-7","queued":true}`)
	}))
	defer srv.Close()

	s := newTestWebhook(t, srv.URL+"/hooks/sms/"+webhookToken+"?v=1", webhookSecret, nil)
	if s.Name() != "webhook" {
		t.Errorf("Name = %q", s.Name())
	}
	got, err := s.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Receipt{Provider: "webhook", MessageID: "gw-7"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
}

func TestWebhookAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		id     string
	}{
		{"numeric id", 200, `{"id":12345}`, "12345"},
		{"plain text", 200, "ok", ""},
		{"no content", 204, "", ""},
		{"JSON without id", 201, `{"status":"queued"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fixedServer(t, tc.status, nil, tc.body)
			got, err := newTestWebhook(t, srv.URL, webhookSecret, nil).Send(context.Background(), testMessage(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			if got.MessageID != tc.id {
				t.Errorf("MessageID = %q, want %q", got.MessageID, tc.id)
			}
		})
	}
}

func TestWebhookWithoutSecretIsUnsigned(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["X-Urbanwatch-Signature"]; ok {
			t.Error("signed without a secret")
		}
		if r.Header.Get("X-Urbanwatch-Timestamp") == "" {
			t.Error("no timestamp")
		}
	}))
	defer srv.Close()
	if _, err := newTestWebhook(t, srv.URL, "", nil).Send(context.Background(), testMessage(t, "")); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		retry  bool
		after  time.Duration
	}{
		{name: "408", status: 408, retry: true},
		{name: "425", status: 425, retry: true},
		{name: "429 with Retry-After seconds", status: 429, header: http.Header{"Retry-After": {"42"}}, retry: true, after: 42 * time.Second},
		{name: "503 with Retry-After date", status: 503,
			header: http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}}, retry: true, after: 90 * time.Second},
		{name: "500 with Retry-After in the past", status: 500,
			header: http.Header{"Retry-After": {testNow.Add(-time.Hour).Format(http.TimeFormat)}}, retry: true},
		{name: "502 with absurd Retry-After", status: 502, header: http.Header{"Retry-After": {"99999999999"}}, retry: true, after: 24 * time.Hour},
		{name: "400", status: 400},
		{name: "401", status: 401},
		{name: "404", status: 404},
		{name: "422", status: 422},
		{name: "redirect is not followed", status: 301, header: http.Header{"Location": {"/elsewhere"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := fixedServer(t, tc.status, tc.header, `{"error":"no"}`)
			u := srv.URL + "/hooks/" + webhookToken
			_, err := newTestWebhook(t, u, webhookSecret, nil).Send(context.Background(), testMessage(t, ""))
			e := wantClass(t, err, "webhook", tc.retry, tc.after)
			if e.Status != tc.status {
				t.Errorf("Status = %d, want %d", e.Status, tc.status)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests, want 1", calls.Load())
			}
			noSecret(t, err, webhookSecret, webhookToken, bearer)
		})
	}
}

func TestWebhookExchangeFailuresHideTheURL(t *testing.T) {
	t.Run("client timeout", func(t *testing.T) {
		srv := blockingServer(t)
		_, err := newTestWebhook(t, srv.URL+"/hooks/"+webhookToken, webhookSecret, shortClient()).Send(context.Background(), testMessage(t, ""))
		wantClass(t, err, "webhook", true, 0)
		noSecret(t, err, webhookToken, webhookSecret, bearer)
	})
	t.Run("connection refused", func(t *testing.T) {
		_, err := newTestWebhook(t, closedURL(t)+"hooks/"+webhookToken+"?key="+webhookToken, webhookSecret, nil).Send(context.Background(), testMessage(t, ""))
		wantClass(t, err, "webhook", true, 0)
		noSecret(t, err, webhookToken)
	})
}

func TestNewWebhookValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    WebhookOptions
		text string
	}{
		{"no URL", WebhookOptions{}, "WebhookOptions.URL is required"},
		{"relative URL", WebhookOptions{URL: "/hooks/" + webhookToken}, "WebhookOptions.URL"},
		{"bad scheme", WebhookOptions{URL: "ftp://example.com/" + webhookToken}, "WebhookOptions.URL"},
		{"unparsable", WebhookOptions{URL: "http://exa mple.com/" + webhookToken}, "WebhookOptions.URL"},
		{"credentials", WebhookOptions{URL: "https://user:" + webhookToken + "@example.com/"}, "WebhookOptions.URL"},
		{"reserved header", WebhookOptions{URL: "https://example.com/", Headers: map[string]string{"idempotency-key": "x"}}, "WebhookOptions.Headers"},
		{"reserved signature", WebhookOptions{URL: "https://example.com/", Headers: map[string]string{"X-Urbanwatch-Signature": "x"}}, "WebhookOptions.Headers"},
		{"bad header name", WebhookOptions{URL: "https://example.com/", Headers: map[string]string{"X Bad": "x"}}, "WebhookOptions.Headers"},
		{"header injection", WebhookOptions{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}, "WebhookOptions.Headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWebhook(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.text)
			}
			noSecret(t, err, webhookToken)
		})
	}
}
