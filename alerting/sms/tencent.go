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
	"strconv"
	"strings"
	"time"
)

// TencentOptions configure a Tencent Cloud SMS sender.
type TencentOptions struct {
	// Endpoint is the API 3.0 endpoint; empty means
	// "https://sms.tencentcloudapi.com/".
	Endpoint string
	// SecretID and SecretKey are the API credentials; both required.
	SecretID  string
	SecretKey string
	// SdkAppID is the SMS application's SdkAppId, e.g. "1400006666";
	// required.
	SdkAppID string
	// SignName is the registered signature content, e.g. "潍坊城管";
	// required.
	SignName string
	// Region is the API region; empty means "ap-guangzhou".
	Region string
	// HTTPClient makes the request; nil means a client with a 10 s timeout
	// that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock for X-TC-Timestamp; nil means time.Now.
	Now func() time.Time
}

// Tencent sends through Tencent Cloud's SendSms API (API 3.0, version
// 2021-01-11, signed with TC3-HMAC-SHA256). It is safe for concurrent use.
type Tencent struct {
	endpoint string
	host     string
	id       string
	key      string
	appID    string
	signName string
	region   string
	client   *http.Client
	now      func() time.Time
}

var _ Sender = (*Tencent)(nil)

// The fixed parts of a Tencent SendSms request.
const (
	tencentService     = "sms"
	tencentAction      = "SendSms"
	tencentVersion     = "2021-01-11"
	tencentContentType = "application/json; charset=utf-8"
)

// NewTencent checks o and returns a sender; the error names the first bad
// field.
func NewTencent(o TencentOptions) (*Tencent, error) {
	if o.Endpoint == "" {
		o.Endpoint = "https://sms.tencentcloudapi.com/"
	}
	if o.Region == "" {
		o.Region = "ap-guangzhou"
	}
	u, err := parseEndpoint("TencentOptions.Endpoint", o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	for _, f := range []struct{ name, value string }{
		{"TencentOptions.SecretID", o.SecretID},
		{"TencentOptions.SecretKey", o.SecretKey},
		{"TencentOptions.SdkAppID", o.SdkAppID},
		{"TencentOptions.SignName", o.SignName},
	} {
		if err := required(f.name, f.value); err != nil {
			return nil, fmt.Errorf("sms: %w", err)
		}
	}
	return &Tencent{
		endpoint: o.Endpoint,
		host:     u.Host,
		id:       o.SecretID,
		key:      o.SecretKey,
		appID:    o.SdkAppID,
		signName: o.SignName,
		region:   o.Region,
		client:   defaultClient(o.HTTPClient),
		now:      defaultNow(o.Now),
	}, nil
}

// Name returns "tencent".
func (t *Tencent) Name() string { return "tencent" }

// tencentRequest is SendSms's body.
type tencentRequest struct {
	PhoneNumberSet   []string `json:"PhoneNumberSet"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	SignName         string   `json:"SignName"`
	TemplateID       string   `json:"TemplateId"`
	TemplateParamSet []string `json:"TemplateParamSet"`
	SessionContext   string   `json:"SessionContext,omitempty"`
}

// Send submits m once with TemplateId m.Code, the param values in order and
// m.ID as SessionContext. It succeeds only when the status for m.To has Code
// "Ok"; the receipt's MessageID is its SerialNo. RequestLimitExceeded*,
// InternalError*, the 30-second per-number limit (after 30 s), HTTP 429 and
// 5xx are retryable; every other code (daily and hourly limits, sensitive
// words, AuthFailure.*, InvalidParameter*, ...) is permanent.
func (t *Tencent) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := checkTo(m.To); err != nil {
		return Receipt{}, invalid(t.Name(), err)
	}
	if m.Code == "" {
		return Receipt{}, invalid(t.Name(), fmt.Errorf("template %q has no Tencent TemplateId", m.Template))
	}
	values := make([]string, len(m.Params))
	for i, p := range m.Params {
		values[i] = p.Value
	}
	payload, err := json.Marshal(tencentRequest{
		PhoneNumberSet:   []string{m.To},
		SmsSdkAppID:      t.appID,
		SignName:         t.signName,
		TemplateID:       m.Code,
		TemplateParamSet: values,
		SessionContext:   m.ID,
	})
	if err != nil {
		return Receipt{}, invalid(t.Name(), err)
	}
	now := t.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(payload))
	if err != nil {
		return Receipt{}, exchangeError(t.Name(), 0, "build request", err)
	}
	req.Host = t.host // the Host header; it is signed
	req.Header.Set("Content-Type", tencentContentType)
	req.Header.Set("X-TC-Action", tencentAction)
	req.Header.Set("X-TC-Version", tencentVersion)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("X-TC-Region", t.region)
	req.Header.Set("Authorization", tc3Authorization(t.id, t.key, tencentService, t.host, payload, now.Unix()))
	r, err := roundTrip(t.client, t.Name(), req)
	if err != nil {
		return Receipt{}, err
	}
	return t.receipt(r, m.To, now)
}

// receipt interprets SendSms's answer for the number to.
func (t *Tencent) receipt(r *response, to string, now time.Time) (Receipt, error) {
	type status struct {
		SerialNo    string
		PhoneNumber string
		Code        string
		Message     string
	}
	var ans struct {
		Response struct {
			SendStatusSet []status
			Error         *struct{ Code, Message string }
			RequestId     string
		}
	}
	if e := decodeJSON(t.Name(), r, now, &ans); e != nil {
		return Receipt{}, e
	}
	res := ans.Response
	e := &Error{Provider: t.Name(), Status: r.status, RequestID: res.RequestId}
	switch {
	case res.Error != nil:
		e.Code, e.Message = res.Error.Code, res.Error.Message
	default:
		var st *status
		for i := range res.SendStatusSet {
			if res.SendStatusSet[i].PhoneNumber == to {
				st = &res.SendStatusSet[i]
				break
			}
		}
		if st == nil && len(res.SendStatusSet) == 1 {
			st = &res.SendStatusSet[0]
		}
		if st == nil {
			e.Message = "response has no send status for " + to + ": " + snippet(r.body)
			break
		}
		if st.Code == "Ok" && r.ok() {
			return Receipt{Provider: t.Name(), MessageID: st.SerialNo}, nil
		}
		e.Code, e.Message = st.Code, st.Message
	}
	e.Retryable, e.RetryAfter = tencentRetry(e.Code)
	if retryableStatus(r.status) {
		e.Retryable = true
		if d := retryAfter(r.header, now); d > 0 {
			e.RetryAfter = d
		}
	}
	return Receipt{}, e
}

// tencentRetry classifies a Tencent Cloud error or send-status code.
func tencentRetry(code string) (bool, time.Duration) {
	switch {
	case code == "LimitExceeded.PhoneNumberThirtySecondLimit":
		return true, 30 * time.Second
	case code == "RequestLimitExceeded", strings.HasPrefix(code, "RequestLimitExceeded."),
		code == "InternalError", strings.HasPrefix(code, "InternalError."):
		return true, 0
	}
	return false, 0
}

// tc3Authorization is the Authorization header of a TencentCloud API 3.0 POST
// whose signed headers are content-type (tencentContentType) and host:
// TC3-HMAC-SHA256 over the canonical request, with the key derived from
// "TC3"+secretKey, the UTC date of timestamp, service and "tc3_request".
func tc3Authorization(secretID, secretKey, service, host string, payload []byte, timestamp int64) string {
	const algorithm = "TC3-HMAC-SHA256"
	const signedHeaders = "content-type;host"
	hashedPayload := sha256.Sum256(payload)
	canonicalRequest := strings.Join([]string{
		http.MethodPost,
		"/",
		"", // canonical query string: always empty for a POST
		"content-type:" + tencentContentType + "\n" + "host:" + host + "\n",
		signedHeaders,
		hex.EncodeToString(hashedPayload[:]),
	}, "\n")
	date := time.Unix(timestamp, 0).UTC().Format("2006-01-02")
	scope := date + "/" + service + "/tc3_request"
	hashedRequest := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := algorithm + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + scope + "\n" + hex.EncodeToString(hashedRequest[:])

	key := hmacSHA256([]byte("TC3"+secretKey), date)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "tc3_request")
	signature := hex.EncodeToString(hmacSHA256(key, stringToSign))
	return algorithm + " Credential=" + secretID + "/" + scope + ", SignedHeaders=" + signedHeaders + ", Signature=" + signature
}

// hmacSHA256 returns HMAC-SHA256(key, msg).
func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}
