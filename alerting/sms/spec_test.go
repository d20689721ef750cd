package sms

// Independent implementations of the providers' signatures, written from
// their documentation, for the test servers to check requests with. They
// share no code with the package's signers.

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// specPercentEncode follows Aliyun's recipe: encode as
// application/x-www-form-urlencoded, then "+" → "%20", "*" → "%2A",
// "%7E" → "~".
func specPercentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// specAliyunSignature signs every parameter but Signature, as Aliyun's RPC
// documentation describes: sort by name, encode names and values, join with
// & and =, StringToSign = method&%2F&encode(joined), HMAC-SHA1 keyed by
// secret+"&", base64.
func specAliyunSignature(method string, form url.Values, secret string) string {
	var pairs []string
	for k, vs := range form {
		if k == "Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, specPercentEncode(k)+"="+specPercentEncode(v))
		}
	}
	sort.Strings(pairs) // names are unique, so sorting pairs sorts by name
	stringToSign := method + "&" + specPercentEncode("/") + "&" + specPercentEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func toValues(m map[string]string) url.Values {
	v := url.Values{}
	for k, s := range m {
		v.Set(k, s)
	}
	return v
}

// specTC3 is one TC3-HMAC-SHA256 computation as Tencent Cloud's "Signature
// v3" page lays it out.
type specTC3 struct {
	secretKey       string
	service         string
	method          string
	uri             string
	query           string
	canonicalHeader string // "key:value\n" lines, sorted, lower-case keys
	signedHeaders   string
	payload         []byte
	timestamp       int64
}

// sign returns the hashed payload, the hashed canonical request and the
// signature.
func (s specTC3) sign() (hashedPayload, hashedRequest, signature string) {
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	hashedPayload = sum(s.payload)
	canonicalRequest := s.method + "\n" + s.uri + "\n" + s.query + "\n" + s.canonicalHeader + "\n" + s.signedHeaders + "\n" + hashedPayload
	hashedRequest = sum([]byte(canonicalRequest))
	date := time.Unix(s.timestamp, 0).UTC().Format(time.DateOnly)
	stringToSign := fmt.Sprintf("TC3-HMAC-SHA256\n%d\n%s/%s/tc3_request\n%s", s.timestamp, date, s.service, hashedRequest)
	secretDate := mac([]byte("TC3"+s.secretKey), date)
	secretService := mac(secretDate, s.service)
	secretSigning := mac(secretService, "tc3_request")
	return hashedPayload, hashedRequest, hex.EncodeToString(mac(secretSigning, stringToSign))
}

// specWebhookSignature is the documented webhook signature.
func specWebhookSignature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "." + string(body)))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
