// Package sms sends one text message to one recipient through a template SMS
// gateway (Aliyun, Tencent Cloud), Twilio, a webhook or the log, and says
// whether a failed attempt is worth repeating.
//
// Gateways in mainland China send only pre-approved templates: the request
// names the template by the gateway's id (Message.Code), carries its typed
// variables (Message.Params) and a registered signature, and free text is
// refused. Template renders one rule's variables once for every gateway: the
// Params for the Chinese gateways and the whole Text for Twilio, webhooks and
// the log.
//
// A Sender makes exactly one attempt per Send. Retries, backoff, rate limiting
// and deduplication belong to the caller; like Alertmanager's notifiers, Send
// only reports, through Classify, whether another attempt may succeed and
// after how long. Every error Send returns is an *Error that names the
// provider and never contains a secret.
package sms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Message is one SMS to one recipient. The same Message, ID included, is
// passed to every retry of one notification.
type Message struct {
	// ID is the idempotency key, the same on every retry of one notification:
	// Aliyun OutId, Tencent SessionContext, the webhook's Idempotency-Key.
	ID string
	// To is the recipient in E.164, e.g. "+8613800000000".
	To string
	// Template is the template's name, e.g. "uncovered_load".
	Template string
	// Code is the gateway's id for the template: Aliyun TemplateCode
	// "SMS_123456789", Tencent TemplateId "1234567"; empty for free-text
	// gateways.
	Code string
	// Params are the template's variables in declared order, rendered to
	// strings.
	Params []Param
	// Text is the whole message rendered in Lang (Twilio Body, webhook, log).
	Text string
	// Lang is the language of Text: "zh-CN" or "en".
	Lang string
}

// Param is one rendered template variable.
type Param struct{ Name, Value string }

// Receipt is what a gateway answered for an accepted message.
type Receipt struct {
	// Provider is the accepting Sender's Name.
	Provider string
	// MessageID is the gateway's id for the message (Aliyun BizId, Tencent
	// SerialNo, Twilio sid, the webhook's id if it sent one); it may be empty.
	MessageID string
}

// Sender sends one message, once. It is safe for concurrent use.
//
// Send makes one attempt and never retries. A nil error means the gateway
// accepted the message (not that it was delivered); a non-nil error is an
// *Error, and Classify tells whether to try again.
type Sender interface {
	// Name is the provider: "aliyun", "tencent", "twilio", "webhook", "log".
	Name() string
	// Send submits m once; ctx bounds the whole attempt.
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Error is a gateway's refusal or a failed exchange, classified. Its text
// starts with "sms <provider>" and never contains a secret.
type Error struct {
	// Provider is the Sender's Name.
	Provider string
	// Status is the HTTP status, 0 if no response arrived.
	Status int
	// Code is the gateway's error code, e.g. "isv.BUSINESS_LIMIT_CONTROL".
	Code string
	// Message is the gateway's explanation, or ours when it gave none.
	Message string
	// RequestID is the gateway's request id, for a support ticket; may be
	// empty.
	RequestID string
	// Retryable reports that the same message may succeed on a later attempt.
	Retryable bool
	// RetryAfter is how long to wait before that attempt; 0 lets the caller
	// pick its backoff.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure: provider, HTTP status, code, message and cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sms ")
	b.WriteString(e.Provider)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Classify reports whether err is worth retrying and after how long (0: the
// caller picks its backoff).
//
// An *Error anywhere in the chain decides by its Retryable and RetryAfter.
// Otherwise context.Canceled is final; timeouts (the attempt's context
// deadline, an http.Client timeout, a net.Error that timed out) and connection
// failures (refused, reset, closed early) are retryable; anything else is not.
// A nil err is not retryable.
func Classify(err error) (retryable bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable, e.RetryAfter
	}
	return transient(err), 0
}

// transient classifies an error that did not come from a gateway's answer.
func transient(err error) bool {
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	for _, target := range []error{
		io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// maxBody caps how much of a response body is read.
const maxBody = 64 << 10

// defaultTimeout bounds one exchange when the options give no HTTPClient.
const defaultTimeout = 10 * time.Second

// maxRetryAfter caps a Retry-After header, so that a broken gateway cannot park
// a notification for years.
const maxRetryAfter = 24 * time.Hour

// defaultClient returns the client used when the options give none: a 10 s
// timeout, and redirects returned rather than followed (a gateway API does not
// redirect; following one would turn the POST into a GET).
func defaultClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{
		Timeout: defaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// defaultNow returns now, or time.Now.
func defaultNow(now func() time.Time) func() time.Time {
	if now != nil {
		return now
	}
	return time.Now
}

// randomNonce returns 16 crypto-random bytes in hex.
func randomNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	return hex.EncodeToString(b[:])
}

// parseEndpoint checks an http(s) URL option. Its errors name the field and,
// since a webhook URL may carry a token, never repeat the URL.
func parseEndpoint(field, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is required", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid URL", field)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: scheme must be http or https, not %q", field, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s has no host", field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s must not carry credentials", field)
	}
	return u, nil
}

// required returns an error naming field when value is empty.
func required(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return fmt.Errorf("%s is required", field)
	}
	return nil
}

// checkTo reports whether to is an E.164 number: "+", a non-zero digit, and
// at most 15 digits in all.
func checkTo(to string) error {
	digits, ok := strings.CutPrefix(to, "+")
	if !ok || len(digits) < 2 || len(digits) > 15 || digits[0] == '0' {
		return fmt.Errorf("recipient %q is not an E.164 number", to)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return fmt.Errorf("recipient %q is not an E.164 number", to)
		}
	}
	return nil
}

// invalid is the permanent error for a message the provider cannot send.
func invalid(provider string, err error) *Error {
	return &Error{Provider: provider, Message: "invalid message", Err: err}
}

// response is one HTTP exchange's answer, its body read up to maxBody.
type response struct {
	status    int
	header    http.Header
	body      []byte
	truncated bool // the body was longer than maxBody
}

// ok reports a 2xx status.
func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// roundTrip sends req and reads the answer. A failed exchange comes back as a
// classified *Error whose text carries only the URL's scheme and host.
func roundTrip(client *http.Client, provider string, req *http.Request) (*response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, exchangeError(provider, 0, "send request", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		// The gateway may have accepted the message; a repeat may send it
		// twice, which for an alert beats not sending it at all.
		return nil, exchangeError(provider, resp.StatusCode, "read response", err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: body}
	if len(body) > maxBody {
		r.body, r.truncated = body[:maxBody], true
	}
	return r, nil
}

// exchangeError wraps a transport failure.
func exchangeError(provider string, status int, op string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return &Error{Provider: provider, Status: status, Message: op, Retryable: transient(err), Err: err}
}

// redactURL keeps a URL's scheme and host: a path or query may hold a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(url)"
	}
	return u.Scheme + "://" + u.Host
}

// retryableStatus reports an HTTP status worth repeating: 408 Request Timeout,
// 425 Too Early, 429 Too Many Requests and every 5xx.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooEarly ||
		status == http.StatusTooManyRequests || status >= 500
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date
// relative to now; 0 when absent, past or unreadable; at most maxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// statusError classifies a refusal by its HTTP status alone.
func statusError(provider string, r *response, now time.Time, msg string) *Error {
	e := &Error{Provider: provider, Status: r.status, Message: msg}
	if retryableStatus(r.status) {
		e.Retryable = true
		e.RetryAfter = retryAfter(r.header, now)
	}
	return e
}

// decodeJSON decodes a gateway's JSON answer into v. Its error (nil on
// success) is classified by status and says whether the body was not JSON at
// all, too long, or JSON of another shape.
func decodeJSON(provider string, r *response, now time.Time, v any) *Error {
	var msg string
	var cause error
	switch {
	case r.truncated:
		msg = fmt.Sprintf("response body exceeds %d KiB", maxBody>>10)
	case !json.Valid(r.body):
		msg = "response is not JSON: " + snippet(r.body)
	default:
		err := json.Unmarshal(r.body, v)
		if err == nil {
			return nil
		}
		msg, cause = "unexpected response: "+snippet(r.body), err
	}
	e := statusError(provider, r, now, msg)
	e.Err = cause
	return e
}

// snippet returns the start of a body for an error message: valid UTF-8,
// whitespace collapsed, at most 200 bytes.
func snippet(body []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if s == "" {
		return "(empty body)"
	}
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
