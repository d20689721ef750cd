package sms

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioToken = "twilio-token-DO-NOT-LOG"
)

func newTestTwilio(t *testing.T, base string, client *http.Client, service string) *Twilio {
	t.Helper()
	o := TwilioOptions{BaseURL: base, AccountSID: twilioSID, AuthToken: twilioToken, HTTPClient: client, Now: fixedClock}
	if service != "" {
		o.MessagingServiceSID = service
	} else {
		o.From = "+14155550100"
	}
	s, err := NewTwilio(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTwilioRequest checks path, auth and encoding and returns the form.
func checkTwilioRequest(t *testing.T, r *http.Request) url.Values {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("method = %s", r.Method)
	}
	if want := "/2010-04-01/Accounts/" + twilioSID + "/Messages.json"; r.URL.Path != want {
		t.Errorf("path = %s, want %s", r.URL.Path, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != twilioSID || pass != twilioToken {
		t.Errorf("basic auth = %q, %q, %v", user, pass, ok)
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	return form
}

func TestTwilioSendSuccess(t *testing.T) {
	msg := testMessage(t, "")
	for _, tc := range []struct {
		name    string
		service string
		want    url.Values
	}{
		{"from number", "", url.Values{"To": {"+8613800000000"}, "From": {"+14155550100"}, "Body": {msg.Text}}},
		{"messaging service", "MG0123", url.Values{"To": {"+8613800000000"}, "MessagingServiceSid": {"MG0123"}, "Body": {msg.Text}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if form := checkTwilioRequest(t, r); !reflect.DeepEqual(form, tc.want) {
					t.Errorf("form = %v, want %v", form, tc.want)
				}
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+8613800000000"}`)
			}))
			defer srv.Close()
			s := newTestTwilio(t, srv.URL, nil, tc.service)
			got, err := s.Send(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := (Receipt{Provider: "twilio", MessageID: "SM0123456789abcdef0123456789abcdef"}); got != want {
				t.Errorf("receipt = %+v, want %+v", got, want)
			}
		})
	}
}

func TestTwilioRefusals(t *testing.T) {
	twErr := func(code, status int, msg string) string {
		return fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, msg, code, status)
	}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		retry  bool
		after  time.Duration
		code   string
		text   string
	}{
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"5"}}, body: twErr(20429, 429, "Too Many Requests"),
			retry: true, after: 5 * time.Second, code: "20429", text: "Too Many Requests"},
		{name: "503", status: 503, body: twErr(20503, 503, "Service Unavailable"), retry: true, code: "20503"},
		{name: "500 not JSON", status: 500, body: "Internal Server Error", retry: true, text: "not JSON"},
		{name: "invalid To", status: 400, body: twErr(21211, 400, "The 'To' number is not a valid phone number."), code: "21211", text: "not a valid phone number"},
		{name: "unsubscribed", status: 400, body: twErr(21610, 400, "Attempt to send to unsubscribed recipient"), code: "21610"},
		{name: "authentication", status: 401, body: twErr(20003, 401, "Authenticate"), code: "20003"},
		{name: "404 without body", status: 404, body: "", text: "not JSON"},
		{name: "200 not JSON", status: 200, body: "<html>hello</html>", text: "response is not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fixedServer(t, tc.status, tc.header, tc.body)
			_, err := newTestTwilio(t, srv.URL, nil, "").Send(context.Background(), testMessage(t, ""))
			e := wantClass(t, err, "twilio", tc.retry, tc.after)
			if e.Status != tc.status || e.Code != tc.code {
				t.Errorf("Status, Code = %d, %q; want %d, %q", e.Status, e.Code, tc.status, tc.code)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
			noSecret(t, err, twilioToken)
		})
	}
}

func TestTwilioExchangeFailures(t *testing.T) {
	t.Run("client timeout", func(t *testing.T) {
		srv := blockingServer(t)
		_, err := newTestTwilio(t, srv.URL, shortClient(), "").Send(context.Background(), testMessage(t, ""))
		wantClass(t, err, "twilio", true, 0)
		noSecret(t, err, twilioToken)
	})
	t.Run("empty text", func(t *testing.T) {
		_, err := newTestTwilio(t, closedURL(t), nil, "").Send(context.Background(), Message{To: "+8613800000000"})
		wantClass(t, err, "twilio", false, 0)
	})
}

func TestNewTwilioValidates(t *testing.T) {
	ok := TwilioOptions{AccountSID: "AC1", AuthToken: "token", From: "+14155550100"}
	s, err := NewTwilio(ok)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"; s.messagesURL != want {
		t.Errorf("URL = %q, want %q", s.messagesURL, want)
	}
	for field, mutate := range map[string]func(*TwilioOptions){
		"AccountSID": func(o *TwilioOptions) { o.AccountSID = "" },
		"AuthToken":  func(o *TwilioOptions) { o.AuthToken = "" },
		"From":       func(o *TwilioOptions) { o.From = "" },
		"BaseURL":    func(o *TwilioOptions) { o.BaseURL = "https://" },
	} {
		o := ok
		mutate(&o)
		_, err := NewTwilio(o)
		if err == nil || !strings.Contains(err.Error(), "TwilioOptions."+field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
	o := ok
	o.From = "4155550100"
	if _, err := NewTwilio(o); err == nil || !strings.Contains(err.Error(), "TwilioOptions.From") {
		t.Errorf("non-E.164 From: %v", err)
	}
}
