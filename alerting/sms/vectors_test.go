package sms

// Known-answer vectors published by the providers, checked against the
// package's signers and against the independent implementations the test
// servers use (spec_test.go), so that both agree with the provider.

import (
	"testing"
)

// Aliyun's "Signature mechanism" (RPC, signature version 1.0) documentation:
// DescribeRegions with AccessKeySecret "testsecret".
var aliyunDocDescribeRegions = map[string]string{
	"AccessKeyId":      "testid",
	"Action":           "DescribeRegions",
	"Format":           "XML",
	"SignatureMethod":  "HMAC-SHA1",
	"SignatureNonce":   "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
	"SignatureVersion": "1.0",
	"Timestamp":        "2016-02-23T12:46:24Z",
	"Version":          "2014-05-26",
}

const (
	aliyunDocDescribeRegionsStringToSign = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML" +
		"%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf" +
		"%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	aliyunDocDescribeRegionsSignature = "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
)

// Aliyun SMS's "HTTP protocol and signature" example: SendSms with a Chinese
// SignName and AccessKeySecret "testSecret".
var aliyunDocSendSms = map[string]string{
	"AccessKeyId":      "testId",
	"Action":           "SendSms",
	"Format":           "XML",
	"OutId":            "123",
	"PhoneNumbers":     "15300000001",
	"RegionId":         "cn-hangzhou",
	"SignName":         "阿里云短信测试专用",
	"SignatureMethod":  "HMAC-SHA1",
	"SignatureNonce":   "45e25e9b-0a6f-4070-8c85-2956eda1b466",
	"SignatureVersion": "1.0",
	"TemplateCode":     "SMS_71390007",
	"TemplateParam":    `{"customer":"test"}`,
	"Timestamp":        "2017-07-12T02:42:19Z",
	"Version":          "2017-05-25",
}

const (
	aliyunDocSendSmsStringToSign = "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123" +
		"%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou" +
		"%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8" +
		"%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0" +
		"%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D" +
		"%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
	aliyunDocSendSmsSignature = "zJDF+Lrzhj/ThnlvIToysFRq6t4="
)

func TestAliyunSignatureMatchesPublishedVectors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		params       map[string]string
		secret       string
		stringToSign string
		signature    string
	}{
		{"DescribeRegions", aliyunDocDescribeRegions, "testsecret", aliyunDocDescribeRegionsStringToSign, aliyunDocDescribeRegionsSignature},
		{"SendSms", aliyunDocSendSms, "testSecret", aliyunDocSendSmsStringToSign, aliyunDocSendSmsSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := aliyunStringToSign("GET", tc.params); got != tc.stringToSign {
				t.Errorf("string to sign:\n got %s\nwant %s", got, tc.stringToSign)
			}
			if got := aliyunSignature("GET", tc.params, tc.secret); got != tc.signature {
				t.Errorf("signature = %s, want %s", got, tc.signature)
			}
			// The test servers' verifier must agree with the published value too.
			if got := specAliyunSignature("GET", toValues(tc.params), tc.secret); got != tc.signature {
				t.Errorf("spec verifier signature = %s, want %s", got, tc.signature)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"AZaz09-_.~":     "AZaz09-_.~",
		"a b":            "a%20b",
		"*":              "%2A",
		"+/=&:":          "%2B%2F%3D%26%3A",
		"鲁":              "%E9%B2%81",
		`{"k":"v"}`:      "%7B%22k%22%3A%22v%22%7D",
		"100%":           "100%25",
		"2016-02-23T12:": "2016-02-23T12%3A",
	} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
		if got := specPercentEncode(in); got != want {
			t.Errorf("specPercentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

// Tencent Cloud's "Signature v3" documentation: CVM DescribeInstances in
// ap-guangzhou at timestamp 1551113065 with the example SecretId/SecretKey.
const (
	tencentDocSecretID  = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	tencentDocSecretKey = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	tencentDocHost      = "cvm.tencentcloudapi.com"
	tencentDocTimestamp = 1551113065
	tencentDocPayload   = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	// Published intermediate values.
	tencentDocHashedPayload = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
	tencentDocHashedRequest = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
	tencentDocAuthorization = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, " +
		"SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	// The current edition of the same page masks the key as
	// "Gu5t9xGARNpq86cd98joQYCN3*******" and publishes this signature for it.
	tencentDocMaskedKey       = "Gu5t9xGARNpq86cd98joQYCN3*******"
	tencentDocMaskedSignature = "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
)

func TestTC3SignatureMatchesPublishedVector(t *testing.T) {
	got := tc3Authorization(tencentDocSecretID, tencentDocSecretKey, "cvm", tencentDocHost, []byte(tencentDocPayload), tencentDocTimestamp)
	if got != tencentDocAuthorization {
		t.Errorf("Authorization:\n got %s\nwant %s", got, tencentDocAuthorization)
	}
	masked := tc3Authorization(tencentDocSecretID, tencentDocMaskedKey, "cvm", tencentDocHost, []byte(tencentDocPayload), tencentDocTimestamp)
	if want := "Signature=" + tencentDocMaskedSignature; !hasSuffix(masked, want) {
		t.Errorf("Authorization with the masked key = %s, want it to end in %s", masked, want)
	}

	// The test servers' verifier, step by step against the published values.
	spec := specTC3{
		secretKey:       tencentDocSecretKey,
		service:         "cvm",
		method:          "POST",
		uri:             "/",
		canonicalHeader: "content-type:application/json; charset=utf-8\nhost:" + tencentDocHost + "\n",
		signedHeaders:   "content-type;host",
		payload:         []byte(tencentDocPayload),
		timestamp:       tencentDocTimestamp,
	}
	hashedPayload, hashedRequest, signature := spec.sign()
	if hashedPayload != tencentDocHashedPayload {
		t.Errorf("spec hashed payload = %s, want %s", hashedPayload, tencentDocHashedPayload)
	}
	if hashedRequest != tencentDocHashedRequest {
		t.Errorf("spec hashed canonical request = %s, want %s", hashedRequest, tencentDocHashedRequest)
	}
	if want := "Signature=" + signature; !hasSuffix(tencentDocAuthorization, want) {
		t.Errorf("spec signature = %s, want the one in %s", signature, tencentDocAuthorization)
	}
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
