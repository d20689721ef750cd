package sms

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	aliyunKeyID  = "LTAI-test-key"
	aliyunSecret = "aliyun-secret-DO-NOT-LOG"
)

// newTestAliyun returns a sender for endpoint with a fixed clock and nonce.
func newTestAliyun(t *testing.T, endpoint string, client *http.Client) *Aliyun {
	t.Helper()
	a, err := NewAliyun(AliyunOptions{
		Endpoint:        endpoint,
		AccessKeyID:     aliyunKeyID,
		AccessKeySecret: aliyunSecret,
		SignName:        "潍坊城管",
		HTTPClient:      client,
		Now:             fixedClock,
		Nonce:           func() string { return "nonce-0001" },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkAliyunRequest checks what every SendSms request must be and returns
// its form.
func checkAliyunRequest(t *testing.T, r *http.Request) (url.Values, string) {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	if r.URL.Path != "/" || r.URL.RawQuery != "" {
		t.Errorf("URL = %s, want / without a query", r.URL)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	if got, want := form.Get("Signature"), specAliyunSignature("POST", form, aliyunSecret); got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
	return form, string(raw)
}

func TestAliyunSendSuccess(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		form, raw := checkAliyunRequest(t, r)
		want := map[string]string{
			"AccessKeyId":      aliyunKeyID,
			"Action":           "SendSms",
			"Format":           "JSON",
			"RegionId":         "cn-hangzhou",
			"SignatureMethod":  "HMAC-SHA1",
			"SignatureNonce":   "nonce-0001",
			"SignatureVersion": "1.0",
			"Timestamp":        "2026-07-01T16:30:05Z",
			"Version":          "2017-05-25",
			"PhoneNumbers":     "13800000000",
			"SignName":         "潍坊城管",
			"TemplateCode":     "SMS_123456789",
			"TemplateParam":    `{"plate":"鲁G12345","site":"寒亭区 开元街道 #3*工地","time":"00:30"}`,
			"OutId":            "alert-42",
		}
		for k, v := range want {
			if got := form.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		for k := range form {
			if _, ok := want[k]; !ok && k != "Signature" {
				t.Errorf("unexpected parameter %s=%q", k, form.Get(k))
			}
		}
		// Aliyun's encoding in the body too: a space is %20, never "+".
		if strings.Contains(raw, "+") || !strings.Contains(raw, "%20") {
			t.Errorf("body is not percent-encoded the Aliyun way: %s", raw)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"Message":"OK","RequestId":"F655A8D5-B967-440B-8683-DAD6FF8DE990","BizId":"900619746936498440^0","Code":"OK"}`)
	}))
	defer srv.Close()

	a := newTestAliyun(t, srv.URL+"/", nil)
	if a.Name() != "aliyun" {
		t.Errorf("Name = %q", a.Name())
	}
	got, err := a.Send(context.Background(), testMessage(t, "SMS_123456789"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Receipt{Provider: "aliyun", MessageID: "900619746936498440^0"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1", calls.Load())
	}
}

func TestAliyunPhoneNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"+8613800000000": "13800000000",
		"+85291234567":   "85291234567",
		"+14155550100":   "14155550100",
	} {
		if got := aliyunPhone(in); got != want {
			t.Errorf("aliyunPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAliyunWithoutParamsOrID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, _ := checkAliyunRequest(t, r)
		for _, k := range []string{"TemplateParam", "OutId"} {
			if _, ok := form[k]; ok {
				t.Errorf("%s sent though empty", k)
			}
		}
		if got := form.Get("PhoneNumbers"); got != "85291234567" {
			t.Errorf("PhoneNumbers = %q", got)
		}
		fmt.Fprint(w, `{"Code":"OK","BizId":"1^0"}`)
	}))
	defer srv.Close()
	_, err := newTestAliyun(t, srv.URL, nil).Send(context.Background(), Message{To: "+85291234567", Code: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAliyunRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		retry  bool
		after  time.Duration
		code   string
		text   string // in the error
	}{
		{name: "5xx HTML", status: 502, body: "<html>502 Bad Gateway</html>", retry: true, text: "not JSON"},
		{name: "503 with Retry-After", status: 503, header: http.Header{"Retry-After": {"120"}},
			body:  `{"Code":"ServiceUnavailable","Message":"The request has failed due to a temporary failure of the server."}`,
			retry: true, after: 2 * time.Minute, code: "ServiceUnavailable"},
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"7"}},
			body:  `{"Code":"Throttling.User","Message":"Request was denied due to user flow control.","RequestId":"R1"}`,
			retry: true, after: 7 * time.Second, code: "Throttling.User", text: "request R1"},
		{name: "flow control per minute", status: 200,
			body:  `{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1","RequestId":"R2"}`,
			retry: true, after: time.Minute, code: "isv.BUSINESS_LIMIT_CONTROL", text: "分钟级"},
		{name: "flow control per hour", status: 200,
			body:  `{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发小时级流控Permits:5"}`,
			retry: true, after: time.Hour, code: "isv.BUSINESS_LIMIT_CONTROL"},
		{name: "flow control per day", status: 200,
			body:  `{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发天级流控Permits:10"}`,
			retry: true, after: 24 * time.Hour, code: "isv.BUSINESS_LIMIT_CONTROL"},
		{name: "throttling", status: 400, body: `{"Code":"Throttling","Message":"Request was denied due to request throttling."}`,
			retry: true, code: "Throttling"},
		{name: "api throttling", status: 400, body: `{"Code":"Throttling.Api","Message":"Request was denied due to api flow control."}`,
			retry: true, code: "Throttling.Api"},
		{name: "system error", status: 200, body: `{"Code":"isp.SYSTEM_ERROR","Message":"isp.SYSTEM_ERROR"}`,
			retry: true, code: "isp.SYSTEM_ERROR"},
		{name: "nonce used", status: 400, body: `{"Code":"SignatureNonceUsed","Message":"Specified signature nonce was used already."}`,
			retry: true, code: "SignatureNonceUsed"},
		{name: "illegal number", status: 200, body: `{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号"}`,
			code: "isv.MOBILE_NUMBER_ILLEGAL"},
		{name: "missing parameters", status: 200, body: `{"Code":"isv.TEMPLATE_MISSING_PARAMETERS","Message":"模板缺少变量"}`,
			code: "isv.TEMPLATE_MISSING_PARAMETERS"},
		{name: "unknown key", status: 404, body: `{"Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found."}`,
			code: "InvalidAccessKeyId.NotFound"},
		{name: "bad signature", status: 400, body: `{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}`,
			code: "SignatureDoesNotMatch"},
		{name: "out of credit", status: 200, body: `{"Code":"isv.AMOUNT_NOT_ENOUGH","Message":"账户余额不足"}`,
			code: "isv.AMOUNT_NOT_ENOUGH"},
		{name: "200 not JSON", status: 200, body: "<html>portal</html>", text: "response is not JSON"},
		{name: "200 without Code", status: 200, body: `{"RequestId":"R3"}`, text: "no Code"},
		{name: "200 JSON of another shape", status: 200, body: `["OK"]`, text: "unexpected response"},
		{name: "oversized", status: 200, body: `{"Code":"OK","Pad":"` + strings.Repeat("x", maxBody) + `"}`, text: "exceeds 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fixedServer(t, tc.status, tc.header, tc.body)
			_, err := newTestAliyun(t, srv.URL, nil).Send(context.Background(), testMessage(t, "SMS_123456789"))
			e := wantClass(t, err, "aliyun", tc.retry, tc.after)
			if e.Status != tc.status || e.Code != tc.code {
				t.Errorf("Status, Code = %d, %q; want %d, %q", e.Status, e.Code, tc.status, tc.code)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
			noSecret(t, err, aliyunSecret)
		})
	}
}

func TestAliyunExchangeFailures(t *testing.T) {
	msg := testMessage(t, "SMS_123456789")

	t.Run("client timeout", func(t *testing.T) {
		srv := blockingServer(t)
		_, err := newTestAliyun(t, srv.URL, shortClient()).Send(context.Background(), msg)
		e := wantClass(t, err, "aliyun", true, 0)
		if e.Status != 0 {
			t.Errorf("Status = %d, want 0", e.Status)
		}
		noSecret(t, err, aliyunSecret)
	})
	t.Run("attempt deadline", func(t *testing.T) {
		srv := blockingServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newTestAliyun(t, srv.URL, nil).Send(ctx, msg)
		wantClass(t, err, "aliyun", true, 0)
	})
	t.Run("canceled", func(t *testing.T) {
		srv, calls := fixedServer(t, 200, nil, `{"Code":"OK"}`)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newTestAliyun(t, srv.URL, nil).Send(ctx, msg)
		wantClass(t, err, "aliyun", false, 0)
		if calls.Load() != 0 {
			t.Errorf("a canceled attempt reached the server")
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		_, err := newTestAliyun(t, closedURL(t), nil).Send(context.Background(), msg)
		wantClass(t, err, "aliyun", true, 0)
	})
}

func TestAliyunRefusesBadMessages(t *testing.T) {
	srv, calls := fixedServer(t, 200, nil, `{"Code":"OK"}`)
	a := newTestAliyun(t, srv.URL, nil)
	for name, m := range map[string]Message{
		"national number": {To: "13800000000", Code: "SMS_1"},
		"letters":         {To: "+86138000x0000", Code: "SMS_1"},
		"no template":     {To: "+8613800000000"},
		"duplicate param": {To: "+8613800000000", Code: "SMS_1", Params: []Param{{"a", "1"}, {"a", "2"}}},
	} {
		_, err := a.Send(context.Background(), m)
		if err == nil {
			t.Errorf("%s: sent", name)
			continue
		}
		wantClass(t, err, "aliyun", false, 0)
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests for invalid messages", calls.Load())
	}
}

func TestAliyunConcurrentSends(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, _ := checkAliyunRequest(t, r)
		fmt.Fprintf(w, `{"Code":"OK","BizId":%q}`, form.Get("OutId"))
	}))
	defer srv.Close()
	var n atomic.Int64
	a, err := NewAliyun(AliyunOptions{
		Endpoint: srv.URL, AccessKeyID: aliyunKeyID, AccessKeySecret: aliyunSecret, SignName: "潍坊城管",
		Now: fixedClock, Nonce: func() string { return fmt.Sprint("nonce-", n.Add(1)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			m := testMessage(t, "SMS_123456789")
			m.ID = fmt.Sprint("alert-", i)
			got, err := a.Send(context.Background(), m)
			if err != nil || got.MessageID != m.ID {
				t.Errorf("send %d: %+v, %v", i, got, err)
			}
		})
	}
	wg.Wait()
}

func TestNewAliyunValidates(t *testing.T) {
	ok := AliyunOptions{AccessKeyID: "id", AccessKeySecret: "secret", SignName: "潍坊城管"}
	a, err := NewAliyun(ok)
	if err != nil {
		t.Fatal(err)
	}
	if a.endpoint != "https://dysmsapi.aliyuncs.com/" || a.region != "cn-hangzhou" || a.client.Timeout != 10*time.Second {
		t.Errorf("defaults: endpoint %q, region %q, timeout %v", a.endpoint, a.region, a.client.Timeout)
	}
	for field, mutate := range map[string]func(*AliyunOptions){
		"AccessKeyID":     func(o *AliyunOptions) { o.AccessKeyID = "" },
		"AccessKeySecret": func(o *AliyunOptions) { o.AccessKeySecret = " " },
		"SignName":        func(o *AliyunOptions) { o.SignName = "" },
		"Endpoint":        func(o *AliyunOptions) { o.Endpoint = "ftp://dysmsapi.aliyuncs.com/" },
	} {
		o := ok
		mutate(&o)
		_, err := NewAliyun(o)
		if err == nil || !strings.Contains(err.Error(), "AliyunOptions."+field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
}
