package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TwilioOptions configure a Twilio sender.
type TwilioOptions struct {
	// BaseURL is the API root; empty means "https://api.twilio.com".
	BaseURL string
	// AccountSID and AuthToken are the HTTP Basic credentials; both required.
	AccountSID string
	AuthToken  string
	// From is the sending number in E.164. Required unless
	// MessagingServiceSID is set, which then takes its place.
	From                string
	MessagingServiceSID string
	// HTTPClient makes the request; nil means a client with a 10 s timeout
	// that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock for a Retry-After given as a date; nil means time.Now.
	Now func() time.Time
}

// Twilio sends free text (Message.Text) through Twilio's Messages API. It is
// safe for concurrent use.
type Twilio struct {
	messagesURL string
	sid         string
	token       string
	from        string
	service     string
	client      *http.Client
	now         func() time.Time
}

var _ Sender = (*Twilio)(nil)

// NewTwilio checks o and returns a sender; the error names the first bad
// field.
func NewTwilio(o TwilioOptions) (*Twilio, error) {
	if o.BaseURL == "" {
		o.BaseURL = "https://api.twilio.com"
	}
	u, err := parseEndpoint("TwilioOptions.BaseURL", o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	for _, f := range []struct{ name, value string }{
		{"TwilioOptions.AccountSID", o.AccountSID},
		{"TwilioOptions.AuthToken", o.AuthToken},
	} {
		if err := required(f.name, f.value); err != nil {
			return nil, fmt.Errorf("sms: %w", err)
		}
	}
	if o.MessagingServiceSID == "" {
		if o.From == "" {
			return nil, errors.New("sms: TwilioOptions.From or TwilioOptions.MessagingServiceSID is required")
		}
		if err := checkTo(o.From); err != nil {
			return nil, fmt.Errorf("sms: TwilioOptions.From: %w", err)
		}
	}
	u = u.JoinPath("2010-04-01", "Accounts", o.AccountSID, "Messages.json")
	return &Twilio{
		messagesURL: u.String(),
		sid:         o.AccountSID,
		token:       o.AuthToken,
		from:        o.From,
		service:     o.MessagingServiceSID,
		client:      defaultClient(o.HTTPClient),
		now:         defaultNow(o.Now),
	}, nil
}

// Name returns "twilio".
func (t *Twilio) Name() string { return "twilio" }

// Send posts m.Text to m.To once. The receipt's MessageID is Twilio's sid.
// HTTP 429 and 5xx are retryable, honouring Retry-After; any other 4xx is
// permanent, with Twilio's numeric code (21211 invalid To, 21610
// unsubscribed, 20003 authentication) in Error.Code.
func (t *Twilio) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := checkTo(m.To); err != nil {
		return Receipt{}, invalid(t.Name(), err)
	}
	if m.Text == "" {
		return Receipt{}, invalid(t.Name(), fmt.Errorf("message %q has no text", m.ID))
	}
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if t.service != "" {
		form.Set("MessagingServiceSid", t.service)
	} else {
		form.Set("From", t.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.messagesURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Receipt{}, exchangeError(t.Name(), 0, "build request", err)
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, err := roundTrip(t.client, t.Name(), req)
	if err != nil {
		return Receipt{}, err
	}
	return t.receipt(r, t.now())
}

// receipt interprets the Messages API's answer.
func (t *Twilio) receipt(r *response, now time.Time) (Receipt, error) {
	var ans struct {
		SID     string          `json:"sid"`
		Code    json.RawMessage `json:"code"` // a number, e.g. 21211
		Message string          `json:"message"`
	}
	if e := decodeJSON(t.Name(), r, now, &ans); e != nil {
		return Receipt{}, e // classified by status alone
	}
	if r.ok() {
		return Receipt{Provider: t.Name(), MessageID: ans.SID}, nil
	}
	e := statusError(t.Name(), r, now, ans.Message)
	if code := strings.Trim(string(ans.Code), `"`); code != "null" {
		e.Code = code
	}
	if e.Message == "" {
		e.Message = "unexpected response: " + snippet(r.body)
	}
	return Receipt{}, e
}
