package sms

import (
	"bytes"
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
	tencentID     = "AKID-test-id"
	tencentSecret = "tencent-secret-DO-NOT-LOG"
)

func newTestTencent(t *testing.T, endpoint string, client *http.Client) *Tencent {
	t.Helper()
	s, err := NewTencent(TencentOptions{
		Endpoint:   endpoint,
		SecretID:   tencentID,
		SecretKey:  tencentSecret,
		SdkAppID:   "1400006666",
		SignName:   "潍坊城管",
		HTTPClient: client,
		Now:        fixedClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTencentRequest checks the headers and the TC3 signature of a SendSms
// request and returns its body.
func checkTencentRequest(t *testing.T, r *http.Request) []byte {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "" {
		t.Errorf("request %s %s, want POST /", r.Method, r.URL)
	}
	ts := strconv.FormatInt(testNow.Unix(), 10)
	for name, want := range map[string]string{
		"Content-Type":   "application/json; charset=utf-8",
		"X-TC-Action":    "SendSms",
		"X-TC-Version":   "2021-01-11",
		"X-TC-Timestamp": ts,
		"X-TC-Region":    "ap-guangzhou",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/sms/tc3_request, SignedHeaders=..., Signature=...
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "TC3-HMAC-SHA256 ")
	if !ok {
		t.Fatalf("Authorization = %q", auth)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		fields[k] = v
	}
	// 16:30 UTC on 1 July is 2 July in China; the scope takes the UTC date.
	if want := tencentID + "/2026-07-01/sms/tc3_request"; fields["Credential"] != want {
		t.Errorf("Credential = %q, want %q", fields["Credential"], want)
	}
	if fields["SignedHeaders"] != "content-type;host" {
		t.Errorf("SignedHeaders = %q", fields["SignedHeaders"])
	}
	spec := specTC3{
		secretKey:       tencentSecret,
		service:         "sms",
		method:          r.Method,
		uri:             r.URL.Path,
		query:           r.URL.RawQuery,
		canonicalHeader: "content-type:" + strings.ToLower(r.Header.Get("Content-Type")) + "\nhost:" + strings.ToLower(r.Host) + "\n",
		signedHeaders:   "content-type;host",
		payload:         body,
		timestamp:       testNow.Unix(),
	}
	if _, _, want := spec.sign(); fields["Signature"] != want {
		t.Errorf("Signature = %q, want %q", fields["Signature"], want)
	}
	return body
}

func TestTencentSendSuccess(t *testing.T) {
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := checkTencentRequest(t, r)
		if r.Host != host {
			t.Errorf("Host = %q, want %q", r.Host, host)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"PhoneNumberSet":   []any{"+8613800000000"},
			"SmsSdkAppId":      "1400006666",
			"SignName":         "潍坊城管",
			"TemplateId":       "1234567",
			"TemplateParamSet": []any{"鲁G12345", "寒亭区 开元街道 #3*工地", "00:30"},
			"SessionContext":   "alert-42",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v\nwant %v", got, want)
		}
		fmt.Fprint(w, `{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8613800000000","Fee":1,"SessionContext":"alert-42","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}`)
	}))
	defer srv.Close()
	host = strings.TrimPrefix(srv.URL, "http://")

	s := newTestTencent(t, srv.URL+"/", nil)
	if s.Name() != "tencent" {
		t.Errorf("Name = %q", s.Name())
	}
	got, err := s.Send(context.Background(), testMessage(t, "1234567"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Receipt{Provider: "tencent", MessageID: "5000:1045710669157053657849499619"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
}

func TestTencentEmptyParamsAreAnArray(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := checkTencentRequest(t, r)
		if !bytes.Contains(body, []byte(`"TemplateParamSet":[]`)) || bytes.Contains(body, []byte("SessionContext")) {
			t.Errorf("body = %s", body)
		}
		fmt.Fprint(w, `{"Response":{"SendStatusSet":[{"SerialNo":"s1","PhoneNumber":"+8613800000000","Code":"Ok"}],"RequestId":"r"}}`)
	}))
	defer srv.Close()
	if _, err := newTestTencent(t, srv.URL, nil).Send(context.Background(), Message{To: "+8613800000000", Code: "1"}); err != nil {
		t.Fatal(err)
	}
}

func TestTencentRefusals(t *testing.T) {
	apiError := func(code string) string {
		return `{"Response":{"Error":{"Code":"` + code + `","Message":"refused"},"RequestId":"req-1"}}`
	}
	sendStatus := func(code string) string {
		return `{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800000000","Fee":0,"Code":"` + code + `","Message":"refused"}],"RequestId":"req-2"}}`
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
		{name: "request limit", status: 200, body: apiError("RequestLimitExceeded"), retry: true, code: "RequestLimitExceeded", text: "request req-1"},
		{name: "request limit per uin", status: 200, body: apiError("RequestLimitExceeded.UinLimitExceeded"), retry: true, code: "RequestLimitExceeded.UinLimitExceeded"},
		{name: "internal error", status: 200, body: apiError("InternalError"), retry: true, code: "InternalError"},
		{name: "internal timeout", status: 200, body: apiError("InternalError.Timeout"), retry: true, code: "InternalError.Timeout"},
		{name: "thirty-second limit", status: 200, body: sendStatus("LimitExceeded.PhoneNumberThirtySecondLimit"),
			retry: true, after: 30 * time.Second, code: "LimitExceeded.PhoneNumberThirtySecondLimit", text: "request req-2"},
		{name: "daily limit", status: 200, body: sendStatus("LimitExceeded.PhoneNumberDailyLimit"), code: "LimitExceeded.PhoneNumberDailyLimit"},
		{name: "hourly limit", status: 200, body: sendStatus("LimitExceeded.PhoneNumberOneHourLimit"), code: "LimitExceeded.PhoneNumberOneHourLimit"},
		{name: "sensitive word", status: 200, body: sendStatus("FailedOperation.ContainSensitiveWord"), code: "FailedOperation.ContainSensitiveWord"},
		{name: "bad number", status: 200, body: sendStatus("InvalidParameterValue.IncorrectPhoneNumber"), code: "InvalidParameterValue.IncorrectPhoneNumber"},
		{name: "bad signature", status: 200, body: apiError("AuthFailure.SignatureFailure"), code: "AuthFailure.SignatureFailure"},
		{name: "bad app", status: 200, body: apiError("UnauthorizedOperation.SmsSdkAppIdVerifyFail"), code: "UnauthorizedOperation.SmsSdkAppIdVerifyFail"},
		{name: "unsupported", status: 200, body: apiError("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"), code: "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"},
		{name: "invalid parameter", status: 200, body: apiError("InvalidParameter"), code: "InvalidParameter"},
		{name: "5xx HTML", status: 502, body: "<html>502</html>", retry: true, text: "not JSON"},
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"3"}}, body: apiError("RequestLimitExceeded"),
			retry: true, after: 3 * time.Second, code: "RequestLimitExceeded"},
		{name: "500 with a permanent code", status: 500, body: apiError("InvalidParameter"), retry: true, code: "InvalidParameter"},
		{name: "200 not JSON", status: 200, body: "ok", text: "response is not JSON"},
		{name: "no status for our number", status: 200,
			body: `{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613900000001","Code":"Ok"},{"PhoneNumber":"+8613900000002","Code":"Ok"}],"RequestId":"r"}}`,
			text: "no send status for +8613800000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fixedServer(t, tc.status, tc.header, tc.body)
			_, err := newTestTencent(t, srv.URL, nil).Send(context.Background(), testMessage(t, "1234567"))
			e := wantClass(t, err, "tencent", tc.retry, tc.after)
			if e.Status != tc.status || e.Code != tc.code {
				t.Errorf("Status, Code = %d, %q; want %d, %q", e.Status, e.Code, tc.status, tc.code)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
			noSecret(t, err, tencentSecret)
		})
	}
}

func TestTencentExchangeFailures(t *testing.T) {
	msg := testMessage(t, "1234567")
	t.Run("client timeout", func(t *testing.T) {
		srv := blockingServer(t)
		_, err := newTestTencent(t, srv.URL, shortClient()).Send(context.Background(), msg)
		wantClass(t, err, "tencent", true, 0)
		noSecret(t, err, tencentSecret)
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newTestTencent(t, closedURL(t), nil).Send(ctx, msg)
		wantClass(t, err, "tencent", false, 0)
	})
	t.Run("invalid message", func(t *testing.T) {
		_, err := newTestTencent(t, closedURL(t), nil).Send(context.Background(), Message{To: "+8613800000000"})
		wantClass(t, err, "tencent", false, 0)
	})
}

func TestNewTencentValidates(t *testing.T) {
	ok := TencentOptions{SecretID: "id", SecretKey: "key", SdkAppID: "1400006666", SignName: "潍坊城管"}
	s, err := NewTencent(ok)
	if err != nil {
		t.Fatal(err)
	}
	if s.endpoint != "https://sms.tencentcloudapi.com/" || s.host != "sms.tencentcloudapi.com" || s.region != "ap-guangzhou" {
		t.Errorf("defaults: %q %q %q", s.endpoint, s.host, s.region)
	}
	for field, mutate := range map[string]func(*TencentOptions){
		"SecretID":  func(o *TencentOptions) { o.SecretID = "" },
		"SecretKey": func(o *TencentOptions) { o.SecretKey = "" },
		"SdkAppID":  func(o *TencentOptions) { o.SdkAppID = "" },
		"SignName":  func(o *TencentOptions) { o.SignName = "" },
		"Endpoint":  func(o *TencentOptions) { o.Endpoint = "sms.tencentcloudapi.com" },
	} {
		o := ok
		mutate(&o)
		_, err := NewTencent(o)
		if err == nil || !strings.Contains(err.Error(), "TencentOptions."+field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
}
