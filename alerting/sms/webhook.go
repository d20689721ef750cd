package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"time"
)

// WebhookOptions configure a webhook sender, for an in-house SMS gateway or
// any service that takes the whole message as JSON.
type WebhookOptions struct {
	// URL receives the POST; required, http or https.
	URL string
	// Secret, when set, signs each request: X-Urbanwatch-Signature is
	// "sha256=" + hex(HMAC-SHA256(Secret, timestamp + "." + body)).
	Secret string
	// Headers are added to every request (e.g. Authorization). They may not
	// replace Content-Type, Idempotency-Key, Host, Content-Length or the
	// X-Urbanwatch-* headers.
	Headers map[string]string
	// HTTPClient makes the request; nil means a client with a 10 s timeout
	// that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock for X-Urbanwatch-Timestamp and a Retry-After date;
	// nil means time.Now.
	Now func() time.Time
}

// Webhook posts each message as JSON to one URL. It is safe for concurrent
// use.
//
// The body is {"id","to","template","code","params":[{"name","value"}...],
// "text","lang"}; the headers are Content-Type application/json,
// Idempotency-Key (Message.ID), X-Urbanwatch-Timestamp (Unix seconds) and,
// with a secret, X-Urbanwatch-Signature. A receiver should check the
// signature over the exact body bytes, refuse stale timestamps, and treat a
// repeated Idempotency-Key as already sent.
type Webhook struct {
	url     string
	secret  []byte
	headers http.Header
	client  *http.Client
	now     func() time.Time
}

var _ Sender = (*Webhook)(nil)

// The webhook's own headers.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerTimestamp      = "X-Urbanwatch-Timestamp"
	headerSignature      = "X-Urbanwatch-Signature"
)

// NewWebhook checks o and returns a sender; the error names the first bad
// field and never repeats the URL, which may carry a token.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if _, err := parseEndpoint("WebhookOptions.URL", o.URL); err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	names := make([]string, 0, len(o.Headers))
	for name := range o.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	headers := make(http.Header, len(o.Headers))
	for _, name := range names {
		value := o.Headers[name]
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if !validHeaderName(name) {
			return nil, fmt.Errorf("sms: WebhookOptions.Headers: %q is not a valid header name", name)
		}
		switch canon {
		case "Content-Type", "Content-Length", "Host", headerIdempotencyKey, headerTimestamp, headerSignature:
			return nil, fmt.Errorf("sms: WebhookOptions.Headers: %q is set by the sender", name)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c == '\r' || c == '\n' || c == 0 {
				return nil, fmt.Errorf("sms: WebhookOptions.Headers[%q]: value has a control character", name)
			}
		}
		headers.Set(canon, value)
	}
	return &Webhook{
		url:     o.URL,
		secret:  []byte(o.Secret),
		headers: headers,
		client:  defaultClient(o.HTTPClient),
		now:     defaultNow(o.Now),
	}, nil
}

// validHeaderName reports an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// Name returns "webhook".
func (w *Webhook) Name() string { return "webhook" }

// webhookPayload is the JSON body.
type webhookPayload struct {
	ID       string         `json:"id"`
	To       string         `json:"to"`
	Template string         `json:"template"`
	Code     string         `json:"code"`
	Params   []webhookParam `json:"params"`
	Text     string         `json:"text"`
	Lang     string         `json:"lang"`
}

type webhookParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Send posts m once. Any 2xx is success, and a JSON answer with an "id"
// becomes the receipt's MessageID. 408, 425, 429 and 5xx are retryable,
// honouring Retry-After; any other status is permanent.
func (w *Webhook) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := checkTo(m.To); err != nil {
		return Receipt{}, invalid(w.Name(), err)
	}
	params := make([]webhookParam, len(m.Params))
	for i, p := range m.Params {
		params[i] = webhookParam(p)
	}
	body, err := json.Marshal(webhookPayload{
		ID: m.ID, To: m.To, Template: m.Template, Code: m.Code,
		Params: params, Text: m.Text, Lang: m.Lang,
	})
	if err != nil {
		return Receipt{}, invalid(w.Name(), err)
	}
	now := w.now()
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Receipt{}, exchangeError(w.Name(), 0, "build request", err)
	}
	for name, values := range w.headers {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	if m.ID != "" {
		req.Header.Set(headerIdempotencyKey, m.ID)
	}
	req.Header.Set(headerTimestamp, ts)
	if len(w.secret) > 0 {
		req.Header.Set(headerSignature, webhookSignature(w.secret, ts, body))
	}
	r, err := roundTrip(w.client, w.Name(), req)
	if err != nil {
		return Receipt{}, err
	}
	if !r.ok() {
		return Receipt{}, statusError(w.Name(), r, now, "refused: "+snippet(r.body))
	}
	return Receipt{Provider: w.Name(), MessageID: webhookID(r)}, nil
}

// webhookID returns the "id" of a JSON object answer, string or number; ""
// for any other body.
func webhookID(r *response) string {
	if r.truncated {
		return ""
	}
	var ans struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(r.body, &ans) != nil || len(ans.ID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(ans.ID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(ans.ID, &n) == nil {
		return n.String()
	}
	return ""
}

// webhookSignature is "sha256=" + hex(HMAC-SHA256(secret, ts + "." + body)).
func webhookSignature(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
