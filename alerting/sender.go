package alerting

import (
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
	"github.com/urbanwatch/urbanwatch/config"
)

// NewSender builds the SMS gateway client the settings select; "log"
// writes each message to logger instead of sending it. Each attempt is
// bounded by the settings' timeout (the Manager also bounds it).
func NewSender(s config.SMS, logger zerolog.Logger) (sms.Sender, error) {
	client := &http.Client{Timeout: s.Timeout,
		// A POST that a redirect turned into a GET would not send anything.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		sender sms.Sender
		err    error
	)
	switch s.Provider {
	case "", "log":
		return sms.NewLog(logger), nil
	case "aliyun":
		sender, err = sms.NewAliyun(sms.AliyunOptions{Endpoint: s.Aliyun.Endpoint, AccessKeyID: s.Aliyun.AccessKeyID,
			AccessKeySecret: s.Aliyun.AccessKeySecret, SignName: s.Aliyun.SignName, RegionID: s.Aliyun.RegionID,
			HTTPClient: client})
	case "tencent":
		sender, err = sms.NewTencent(sms.TencentOptions{Endpoint: s.Tencent.Endpoint, SecretID: s.Tencent.SecretID,
			SecretKey: s.Tencent.SecretKey, SdkAppID: s.Tencent.SdkAppID, SignName: s.Tencent.SignName,
			Region: s.Tencent.Region, HTTPClient: client})
	case "twilio":
		sender, err = sms.NewTwilio(sms.TwilioOptions{BaseURL: s.Twilio.BaseURL, AccountSID: s.Twilio.AccountSID,
			AuthToken: s.Twilio.AuthToken, From: s.Twilio.From, MessagingServiceSID: s.Twilio.MessagingServiceSID,
			HTTPClient: client})
	case "webhook":
		sender, err = sms.NewWebhook(sms.WebhookOptions{URL: s.Webhook.URL, Secret: s.Webhook.Secret,
			Headers: s.Webhook.Headers, HTTPClient: client})
	default:
		return nil, fmt.Errorf("sms provider %q: want log, aliyun, tencent, twilio or webhook", s.Provider)
	}
	if err != nil {
		return nil, fmt.Errorf("sms provider %s: %w", s.Provider, err)
	}
	return sender, nil
}
