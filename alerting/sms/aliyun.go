package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// AliyunOptions configure an Aliyun (Alibaba Cloud) SMS sender.
type AliyunOptions struct {
	// Endpoint is the SendSms RPC endpoint; empty means
	// "https://dysmsapi.aliyuncs.com/".
	Endpoint string
	// AccessKeyID and AccessKeySecret are the RAM credentials; both required.
	AccessKeyID     string
	AccessKeySecret string
	// SignName is the registered signature, e.g. "潍坊城管"; required.
	SignName string
	// RegionID is the API region; empty means "cn-hangzhou".
	RegionID string
	// HTTPClient makes the request; nil means a client with a 10 s timeout
	// that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock for the request timestamp; nil means time.Now.
	Now func() time.Time
	// Nonce returns a fresh SignatureNonce and must be safe for concurrent
	// use; nil means 16 crypto-random bytes in hex.
	Nonce func() string
}

// Aliyun sends through Aliyun's SendSms API (RPC style, version 2017-05-25,
// signature version 1.0 with HMAC-SHA1). It is safe for concurrent use.
type Aliyun struct {
	endpoint string
	keyID    string
	secret   string
	signName string
	region   string
	client   *http.Client
	now      func() time.Time
	nonce    func() string
}

var _ Sender = (*Aliyun)(nil)

// NewAliyun checks o and returns a sender; the error names the first bad
// field.
func NewAliyun(o AliyunOptions) (*Aliyun, error) {
	if o.Endpoint == "" {
		o.Endpoint = "https://dysmsapi.aliyuncs.com/"
	}
	if o.RegionID == "" {
		o.RegionID = "cn-hangzhou"
	}
	if _, err := parseEndpoint("AliyunOptions.Endpoint", o.Endpoint); err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	for _, f := range []struct{ name, value string }{
		{"AliyunOptions.AccessKeyID", o.AccessKeyID},
		{"AliyunOptions.AccessKeySecret", o.AccessKeySecret},
		{"AliyunOptions.SignName", o.SignName},
	} {
		if err := required(f.name, f.value); err != nil {
			return nil, fmt.Errorf("sms: %w", err)
		}
	}
	nonce := o.Nonce
	if nonce == nil {
		nonce = randomNonce
	}
	return &Aliyun{
		endpoint: o.Endpoint,
		keyID:    o.AccessKeyID,
		secret:   o.AccessKeySecret,
		signName: o.SignName,
		region:   o.RegionID,
		client:   defaultClient(o.HTTPClient),
		now:      defaultNow(o.Now),
		nonce:    nonce,
	}, nil
}

// Name returns "aliyun".
func (a *Aliyun) Name() string { return "aliyun" }

// Send submits m once with TemplateCode m.Code, the params as TemplateParam
// and m.ID as OutId. The receipt's MessageID is Aliyun's BizId. Rate limits
// (isv.BUSINESS_LIMIT_CONTROL, Throttling*), system errors, a reused nonce,
// HTTP 429 and 5xx are retryable; every other refusal is permanent.
func (a *Aliyun) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := checkTo(m.To); err != nil {
		return Receipt{}, invalid(a.Name(), err)
	}
	if m.Code == "" {
		return Receipt{}, invalid(a.Name(), fmt.Errorf("template %q has no Aliyun TemplateCode", m.Template))
	}
	now := a.now()
	params := map[string]string{
		"AccessKeyId":      a.keyID,
		"Action":           "SendSms",
		"Format":           "JSON",
		"RegionId":         a.region,
		"SignatureMethod":  "HMAC-SHA1",
		"SignatureNonce":   a.nonce(),
		"SignatureVersion": "1.0",
		"Timestamp":        now.UTC().Format("2006-01-02T15:04:05Z"),
		"Version":          "2017-05-25",
		"PhoneNumbers":     aliyunPhone(m.To),
		"SignName":         a.signName,
		"TemplateCode":     m.Code,
	}
	if len(m.Params) > 0 {
		tp, err := templateParamJSON(m.Params)
		if err != nil {
			return Receipt{}, invalid(a.Name(), err)
		}
		params["TemplateParam"] = tp
	}
	if m.ID != "" {
		params["OutId"] = m.ID
	}
	body := aliyunCanonicalQuery(params) + "&Signature=" + percentEncode(aliyunSignature(http.MethodPost, params, a.secret))

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, strings.NewReader(body))
	if err != nil {
		return Receipt{}, exchangeError(a.Name(), 0, "build request", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, err := roundTrip(a.client, a.Name(), req)
	if err != nil {
		return Receipt{}, err
	}
	return a.receipt(r, now)
}

// receipt interprets SendSms's answer.
func (a *Aliyun) receipt(r *response, now time.Time) (Receipt, error) {
	var ans struct {
		Code      string
		Message   string
		BizId     string
		RequestId string
	}
	if e := decodeJSON(a.Name(), r, now, &ans); e != nil {
		return Receipt{}, e
	}
	if r.ok() && ans.Code == "OK" {
		return Receipt{Provider: a.Name(), MessageID: ans.BizId}, nil
	}
	e := &Error{Provider: a.Name(), Status: r.status, Code: ans.Code, Message: ans.Message, RequestID: ans.RequestId}
	if ans.Code == "" && e.Message == "" {
		e.Message = "response has no Code: " + snippet(r.body)
	}
	e.Retryable, e.RetryAfter = aliyunRetry(ans.Code, ans.Message)
	if retryableStatus(r.status) {
		e.Retryable = true
		if d := retryAfter(r.header, now); d > 0 {
			e.RetryAfter = d
		}
	}
	return Receipt{}, e
}

// aliyunRetry classifies an Aliyun error code. isv.BUSINESS_LIMIT_CONTROL is
// Aliyun's per-number flow control; its message says which window
// ("分钟级" minute, "小时级" hour, "天级" day) was hit, and the wait is that
// window.
func aliyunRetry(code, message string) (bool, time.Duration) {
	switch code {
	case "isv.BUSINESS_LIMIT_CONTROL":
		switch {
		case strings.Contains(message, "分钟级"):
			return true, time.Minute
		case strings.Contains(message, "小时级"):
			return true, time.Hour
		case strings.Contains(message, "天级"):
			return true, 24 * time.Hour
		}
		return true, 0
	case "Throttling", "Throttling.User", "Throttling.Api", "isp.SYSTEM_ERROR",
		"ServiceUnavailable", "SignatureNonceUsed":
		return true, 0
	}
	return false, 0
}

// aliyunPhone turns an E.164 number into SendSms's form: a mainland number
// without "+86", any other with its country code but without "+".
func aliyunPhone(e164 string) string {
	if national, ok := strings.CutPrefix(e164, "+86"); ok {
		return national
	}
	return strings.TrimPrefix(e164, "+")
}

// templateParamJSON renders params as a JSON object, keys in declared order,
// without HTML escaping.
func templateParamJSON(params []Param) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if seen[p.Name] {
			return "", fmt.Errorf("param %q appears twice", p.Name)
		}
		seen[p.Name] = true
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(p.Name); err != nil {
			return "", fmt.Errorf("param %q: %w", p.Name, err)
		}
		b.Truncate(b.Len() - 1) // Encode ends with a newline.
		b.WriteByte(':')
		if err := enc.Encode(p.Value); err != nil {
			return "", fmt.Errorf("param %q: %w", p.Name, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// aliyunSignature is Aliyun's RPC signature version 1.0:
// base64(HMAC-SHA1(secret+"&", method+"&%2F&"+percentEncode(canonical query))).
func aliyunSignature(method string, params map[string]string, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(aliyunStringToSign(method, params)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// aliyunStringToSign is method&%2F&percentEncode(canonical query).
func aliyunStringToSign(method string, params map[string]string) string {
	return method + "&" + percentEncode("/") + "&" + percentEncode(aliyunCanonicalQuery(params))
}

// aliyunCanonicalQuery is the parameters sorted by name, each name and value
// percent-encoded, joined as name=value&...; a "Signature" entry is left out.
func aliyunCanonicalQuery(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		b.WriteString(percentEncode(params[k]))
	}
	return b.String()
}

// percentEncode is RFC 3986 percent-encoding of UTF-8 bytes as Aliyun signs
// it: A-Z a-z 0-9 - _ . ~ stay, every other byte becomes %XX in upper-case
// hex (so a space is %20 and * is %2A).
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
