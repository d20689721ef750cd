package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Alerting is who is told about alerts, and how (alerting.yaml, named by
// `alerting:` in urbanwatch.yaml): the people, the duty groups and their
// rosters, escalation, the SMS gateway and the CAP sender. Company
// compliance managers come from the city file's companies.
type Alerting struct {
	// Retention is how long a resolved alert and its history are kept;
	// default 2160h (90 days).
	Retention time.Duration `yaml:"retention"`
	// FlapWindow: a condition that clears and returns within it reopens the
	// same alert instead of paging again; a resolution is announced only
	// once it has held this long. Default 5m.
	FlapWindow time.Duration `yaml:"flap_window"`
	// Defaults apply to people that leave a setting out, and to the
	// companies' compliance contacts.
	Defaults PersonDefaults `yaml:"defaults"`
	People   []Person       `yaml:"people"`
	Groups   []Group        `yaml:"groups"`
	// Escalation is who hears of an alert nobody acknowledged in time.
	Escalation Escalation `yaml:"escalation"`
	SMS        SMS        `yaml:"sms"`
	CAP        CAP        `yaml:"cap"`
	// Users of the alert API. With none, the API is open to whoever reaches
	// its address (keep it on 127.0.0.1) and callers name themselves.
	Users []APIUser `yaml:"users"`

	path string
	doc  *yaml.Node
}

// PersonDefaults are the settings a person inherits.
type PersonDefaults struct {
	Lang string `yaml:"lang"` // zh-CN (default) or en
	// QuietHours: minor, warning and major alerts wait until they end
	// (critical ones never wait); "" for none. Default "22:00-07:00".
	// Someone reached through a group on duty has no quiet hours.
	QuietHours string `yaml:"quiet_hours"`
	// MaxPerHour caps the messages a person receives in any hour; further
	// non-critical ones are recorded as suppressed. Default 20.
	MaxPerHour int `yaml:"max_per_hour"`
}

// Person is someone alerts can be sent to.
type Person struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Phone string `yaml:"phone"` // E.164, e.g. "+8613800000000"
	// Lang, QuietHours and MaxPerHour override Defaults; QuietHours "none"
	// turns them off for this person.
	Lang       string `yaml:"lang"`
	QuietHours string `yaml:"quiet_hours"`
	MaxPerHour int    `yaml:"max_per_hour"`

	// Quiet is QuietHours parsed; nil for none.
	Quiet *Window `yaml:"-"`
}

// GroupKind says what a group is for, and so which alerts reach it.
type GroupKind string

// The group kinds.
const (
	// GroupInspection is a night joint-inspection team: truck alerts in its
	// districts while it is on duty.
	GroupInspection GroupKind = "inspection"
	// GroupFloodDuty are flood-season duty officers: gauge alerts in their
	// districts while on duty.
	GroupFloodDuty GroupKind = "flood_duty"
	// GroupPublic is a public warning group: rainstorm and waterlogging
	// warnings in its districts.
	GroupPublic GroupKind = "public"
	// GroupEscalation receives alerts nobody acknowledged in time; its Tier
	// (1, 2, …) says after how many escalation periods.
	GroupEscalation GroupKind = "escalation"
)

// Group is a set of people with a purpose, the districts it covers and
// when it is on duty.
type Group struct {
	ID      string    `yaml:"id"`
	Name    string    `yaml:"name"`
	Kind    GroupKind `yaml:"kind"`
	Tier    int       `yaml:"tier"` // escalation groups only
	Members []string  `yaml:"members"`
	// Districts it covers, by the city's district names; empty for all.
	// An alert whose district is unknown reaches the groups that cover all.
	Districts []string `yaml:"districts"`
	// Shifts when it is on duty; none means always.
	Shifts []Shift `yaml:"shifts"`
}

// Shift is a recurring duty period. A shift whose hours cross midnight
// belongs to the day it starts: "mon 20:00-06:00" covers Tuesday 03:00.
type Shift struct {
	// Days of the week it starts on (mon … sun); empty for every day.
	Days []string `yaml:"days"`
	// Dates it starts on instead of Days (a holiday roster).
	Dates []Date `yaml:"dates"`
	// Hours; default the whole day.
	Hours Window `yaml:"hours"`
}

// Escalation sets how long an unacknowledged alert waits before each next
// tier hears of it: tier n at n × After[severity].
type Escalation struct {
	// After per severity; a severity left out does not escalate. Default
	// critical 10m, major 30m.
	After map[string]time.Duration `yaml:"after"`
}

// SMS selects the SMS gateway.
type SMS struct {
	// Provider is log (default: messages go to the log), aliyun, tencent,
	// twilio or webhook.
	Provider string `yaml:"provider"`
	// RatePerSecond is the most messages sent per second, across all
	// recipients; default 10.
	RatePerSecond float64 `yaml:"rate_per_second"`
	// MaxAttempts per message before it is recorded as failed; default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout of one attempt; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	Aliyun  SMSAliyun     `yaml:"aliyun"`
	Tencent SMSTencent    `yaml:"tencent"`
	Twilio  SMSTwilio     `yaml:"twilio"`
	Webhook SMSWebhook    `yaml:"webhook"`
	// Templates maps a template name (a rule id, "escalated", "resolved") to
	// the gateway's id of the approved template, per provider.
	Templates map[string]TemplateCodes `yaml:"templates"`
}

// TemplateCodes are one template's ids at the gateways that need them.
type TemplateCodes struct {
	Aliyun  string `yaml:"aliyun"`  // TemplateCode, e.g. SMS_123456789
	Tencent string `yaml:"tencent"` // TemplateId, e.g. 1234567
}

// SMSAliyun is an Aliyun SendSms-compatible gateway.
type SMSAliyun struct {
	Endpoint            string `yaml:"endpoint"` // default https://dysmsapi.aliyuncs.com/
	AccessKeyID         string `yaml:"access_key_id"`
	AccessKeySecret     string `yaml:"access_key_secret"`
	AccessKeySecretFile string `yaml:"access_key_secret_file"`
	SignName            string `yaml:"sign_name"`
	RegionID            string `yaml:"region_id"`
}

// SMSTencent is a Tencent Cloud SMS-compatible gateway.
type SMSTencent struct {
	Endpoint      string `yaml:"endpoint"` // default https://sms.tencentcloudapi.com/
	SecretID      string `yaml:"secret_id"`
	SecretKey     string `yaml:"secret_key"`
	SecretKeyFile string `yaml:"secret_key_file"`
	SdkAppID      string `yaml:"sdk_app_id"`
	SignName      string `yaml:"sign_name"`
	Region        string `yaml:"region"`
}

// SMSTwilio is a Twilio-compatible gateway.
type SMSTwilio struct {
	BaseURL             string `yaml:"base_url"` // default https://api.twilio.com
	AccountSID          string `yaml:"account_sid"`
	AuthToken           string `yaml:"auth_token"`
	AuthTokenFile       string `yaml:"auth_token_file"`
	From                string `yaml:"from"`
	MessagingServiceSID string `yaml:"messaging_service_sid"`
}

// SMSWebhook posts each message as JSON to a URL of the city's own.
type SMSWebhook struct {
	URL        string            `yaml:"url"`
	Secret     string            `yaml:"secret"` // HMAC-SHA256 signing key
	SecretFile string            `yaml:"secret_file"`
	Headers    map[string]string `yaml:"headers"`
}

// CAP sets the CAP 1.2 warnings made from rainstorm and waterlogging alerts.
type CAP struct {
	// Sender is the CAP sender id; default "urbanwatch@{region_code}".
	Sender string `yaml:"sender"`
	// SenderName, e.g. "潍坊市城市管理局"; default the city's name.
	SenderName string `yaml:"sender_name"`
	// Status is Actual (default), Exercise or Test.
	Status string `yaml:"status"`
	// Web is the public base URL the warnings link to; optional.
	Web string `yaml:"web"`
}

// APIUser may use the alert API with a bearer token.
type APIUser struct {
	Name      string `yaml:"name"` // recorded as who acknowledged or resolved
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Company restricts the user to that company's trucks (a compliance
	// manager); empty for all alerts.
	Company string `yaml:"company"`
}

// The providers SMS.Provider may name.
var smsProviders = []string{"log", "aliyun", "tencent", "twilio", "webhook"}

var (
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	e164Pattern  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	weekdayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
		"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
)

// DefaultAlerting returns the settings used when a key, or the whole file,
// is left out: no people or groups (only companies' contacts are told),
// SMS to the log.
func DefaultAlerting() *Alerting {
	return &Alerting{
		Retention:  90 * 24 * time.Hour,
		FlapWindow: 5 * time.Minute,
		Defaults:   PersonDefaults{Lang: "zh-CN", QuietHours: "22:00-07:00", MaxPerHour: 20},
		Escalation: Escalation{After: map[string]time.Duration{SeverityCritical: 10 * time.Minute,
			SeverityMajor: 30 * time.Minute}},
		SMS: SMS{Provider: "log", RatePerSecond: 10, MaxAttempts: 8, Timeout: 10 * time.Second},
		CAP: CAP{Status: "Actual"},
	}
}

// LoadAlerting reads an alerting file over DefaultAlerting, reads the secret
// files it names (relative to it), and validates it against city (nil
// skips the district checks). It reports every problem at once, each with
// the file and line.
func LoadAlerting(path string, city *City) (*Alerting, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read alerting: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a := DefaultAlerting()
	a.path, a.doc = path, &root
	// yaml.v3 decodes a map into the one already there, so the file's
	// escalation.after would be merged into the default; Validate fills the
	// default in when the key is left out.
	a.Escalation.After = nil
	if err := decodeStrict(path, data, a); err != nil {
		return nil, yamlErrors(path, err)
	}
	dir := filepath.Dir(path)
	for i := range a.Users {
		if p := &a.Users[i].TokenFile; *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for _, p := range []*string{&a.SMS.Aliyun.AccessKeySecretFile, &a.SMS.Tencent.SecretKeyFile,
		&a.SMS.Twilio.AuthTokenFile, &a.SMS.Webhook.SecretFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	err = a.Validate(city)
	a.doc = nil
	return a, err
}

// Path is the file the settings were read from; "" when built in code.
func (a *Alerting) Path() string { return a.path }

// line returns the line of the node at path (see City.line).
func (a *Alerting) line(path ...any) int {
	return (&City{doc: a.doc}).line(path...)
}

// Validate fills defaults, parses quiet hours, reads secret files and checks
// the whole against city (nil skips the district checks). It reports every
// problem at once.
func (a *Alerting) Validate(city *City) error {
	var errs []error
	bad := func(path []any, format string, args ...any) {
		errs = append(errs, errAt(a.path, a.line(path...), format, args...))
	}
	def := DefaultAlerting()
	if a.Retention <= 0 {
		a.Retention = def.Retention
	}
	if a.FlapWindow < 0 {
		bad([]any{"flap_window"}, "flap_window %v: must not be negative", a.FlapWindow)
	}
	if a.Defaults.Lang == "" {
		a.Defaults.Lang = def.Defaults.Lang
	}
	if a.Defaults.MaxPerHour <= 0 {
		a.Defaults.MaxPerHour = def.Defaults.MaxPerHour
	}
	if !validLang(a.Defaults.Lang) {
		bad([]any{"defaults", "lang"}, "defaults.lang %q: want zh-CN or en", a.Defaults.Lang)
	}
	if _, err := ParseQuietHours(a.Defaults.QuietHours); err != nil {
		bad([]any{"defaults", "quiet_hours"}, "defaults.quiet_hours: %v", err)
	}
	people := map[string]bool{}
	for i := range a.People {
		p := &a.People[i]
		at := []any{"people", i}
		switch {
		case !idPattern.MatchString(p.ID):
			bad(at, "people[%d]: id %q: want letters, digits, '_', '.', '-'", i, p.ID)
		case people[p.ID]:
			bad(at, "people[%d]: id %q is used twice", i, p.ID)
		}
		people[p.ID] = true
		if !e164Pattern.MatchString(p.Phone) {
			bad(append(at, "phone"), "person %s: phone %q: want E.164, e.g. +8613800000000", p.ID, p.Phone)
		}
		if p.Name == "" {
			bad(at, "person %s: name is required", p.ID)
		}
		if p.Lang == "" {
			p.Lang = a.Defaults.Lang
		}
		if !validLang(p.Lang) {
			bad(append(at, "lang"), "person %s: lang %q: want zh-CN or en", p.ID, p.Lang)
		}
		if p.MaxPerHour <= 0 {
			p.MaxPerHour = a.Defaults.MaxPerHour
		}
		q := p.QuietHours
		if q == "" {
			q = a.Defaults.QuietHours
		}
		w, err := ParseQuietHours(q)
		if err != nil {
			bad(append(at, "quiet_hours"), "person %s: quiet_hours: %v", p.ID, err)
		}
		p.Quiet = w
	}
	var districts map[string]bool
	if city != nil && len(city.Districts) > 0 {
		districts = map[string]bool{}
		for _, d := range city.Districts {
			districts[d.Name] = true
		}
	}
	groups := map[string]bool{}
	for i := range a.Groups {
		g := &a.Groups[i]
		at := []any{"groups", i}
		switch {
		case !idPattern.MatchString(g.ID):
			bad(at, "groups[%d]: id %q: want letters, digits, '_', '.', '-'", i, g.ID)
		case groups[g.ID]:
			bad(at, "groups[%d]: id %q is used twice", i, g.ID)
		}
		groups[g.ID] = true
		switch g.Kind {
		case GroupInspection, GroupFloodDuty, GroupPublic:
			if g.Tier != 0 {
				bad(append(at, "tier"), "group %s: tier is for escalation groups", g.ID)
			}
		case GroupEscalation:
			if g.Tier < 1 {
				bad(append(at, "tier"), "group %s: an escalation group needs tier 1, 2, …", g.ID)
			}
		default:
			bad(append(at, "kind"), "group %s: kind %q: want inspection, flood_duty, public or escalation", g.ID, g.Kind)
		}
		if len(g.Members) == 0 {
			bad(at, "group %s: no members", g.ID)
		}
		for j, m := range g.Members {
			if !people[m] {
				bad(append(at, "members", j), "group %s: member %q is not in people", g.ID, m)
			}
		}
		for j, d := range g.Districts {
			if districts != nil && !districts[d] {
				bad(append(at, "districts", j), "group %s: district %q is not in the city's districts", g.ID, d)
			}
		}
		for j := range g.Shifts {
			s := &g.Shifts[j]
			sat := append(at, "shifts", j)
			if s.Hours == (Window{}) {
				s.Hours = Window{0, daySeconds}
			} else if err := s.Hours.check(); err != nil {
				bad(append(sat, "hours"), "group %s: shift %d: %v", g.ID, j+1, err)
			}
			if len(s.Days) > 0 && len(s.Dates) > 0 {
				bad(sat, "group %s: shift %d: give days or dates, not both", g.ID, j+1)
			}
			for k, d := range s.Days {
				if _, ok := weekdayNames[strings.ToLower(d)]; !ok {
					bad(append(sat, "days", k), "group %s: shift %d: day %q: want mon, tue, wed, thu, fri, sat or sun", g.ID, j+1, d)
				}
			}
			for k, d := range s.Dates {
				if !d.valid() {
					bad(append(sat, "dates", k), "group %s: shift %d: %s is not a date", g.ID, j+1, d)
				}
			}
		}
	}
	if a.Escalation.After == nil {
		a.Escalation.After = def.Escalation.After
	}
	for sev, d := range a.Escalation.After {
		if !validSeverity(sev) {
			bad([]any{"escalation", "after", sev}, "escalation.after: severity %q: want minor, warning, major or critical", sev)
		}
		if d <= 0 {
			bad([]any{"escalation", "after", sev}, "escalation.after.%s: %v must be positive", sev, d)
		}
	}
	a.validateSMS(bad)
	a.validateUsers(city, bad)
	switch a.CAP.Status {
	case "":
		a.CAP.Status = "Actual"
	case "Actual", "Exercise", "Test":
	default:
		bad([]any{"cap", "status"}, "cap.status %q: want Actual, Exercise or Test", a.CAP.Status)
	}
	if a.CAP.Sender == "" && city != nil {
		a.CAP.Sender = "urbanwatch@" + city.RegionCode
	}
	if strings.ContainsAny(a.CAP.Sender, " ,<&") {
		bad([]any{"cap", "sender"}, "cap.sender %q: no spaces, commas, '<' or '&'", a.CAP.Sender)
	}
	if a.CAP.SenderName == "" && city != nil {
		a.CAP.SenderName = city.Name
	}
	if a.CAP.Web != "" {
		if u, err := url.Parse(a.CAP.Web); err != nil || u.Scheme == "" || u.Host == "" {
			bad([]any{"cap", "web"}, "cap.web %q: want an absolute URL", a.CAP.Web)
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(x, y error) int { return strings.Compare(x.Error(), y.Error()) })
		return errors.Join(errs...)
	}
	return nil
}

// validateSMS checks the gateway settings and reads its secret files.
func (a *Alerting) validateSMS(bad func(path []any, format string, args ...any)) {
	s := &a.SMS
	if s.Provider == "" {
		s.Provider = "log"
	}
	if !slices.Contains(smsProviders, s.Provider) {
		bad([]any{"sms", "provider"}, "sms.provider %q: want one of %s", s.Provider, strings.Join(smsProviders, ", "))
	}
	if s.RatePerSecond <= 0 {
		s.RatePerSecond = 10
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 8
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	secret := func(key string, value *string, file, name string) {
		if file != "" {
			if *value != "" {
				bad([]any{"sms", key}, "sms.%s: give %s or %s_file, not both", key, name, name)
				return
			}
			b, err := os.ReadFile(file)
			if err != nil {
				bad([]any{"sms", key, name + "_file"}, "sms.%s.%s_file: %v", key, name, err)
				return
			}
			*value = strings.TrimSpace(string(b))
		}
	}
	need := func(key string, fields map[string]string) {
		for name, v := range fields {
			if v == "" {
				bad([]any{"sms", key}, "sms.%s.%s is required for provider %s", key, name, key)
			}
		}
	}
	switch s.Provider {
	case "aliyun":
		secret("aliyun", &s.Aliyun.AccessKeySecret, s.Aliyun.AccessKeySecretFile, "access_key_secret")
		need("aliyun", map[string]string{"access_key_id": s.Aliyun.AccessKeyID,
			"access_key_secret": s.Aliyun.AccessKeySecret, "sign_name": s.Aliyun.SignName})
	case "tencent":
		secret("tencent", &s.Tencent.SecretKey, s.Tencent.SecretKeyFile, "secret_key")
		need("tencent", map[string]string{"secret_id": s.Tencent.SecretID, "secret_key": s.Tencent.SecretKey,
			"sdk_app_id": s.Tencent.SdkAppID, "sign_name": s.Tencent.SignName})
	case "twilio":
		secret("twilio", &s.Twilio.AuthToken, s.Twilio.AuthTokenFile, "auth_token")
		need("twilio", map[string]string{"account_sid": s.Twilio.AccountSID, "auth_token": s.Twilio.AuthToken})
		if s.Twilio.From == "" && s.Twilio.MessagingServiceSID == "" {
			bad([]any{"sms", "twilio"}, "sms.twilio: from or messaging_service_sid is required")
		}
	case "webhook":
		secret("webhook", &s.Webhook.Secret, s.Webhook.SecretFile, "secret")
		if u, err := url.Parse(s.Webhook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad([]any{"sms", "webhook", "url"}, "sms.webhook.url %q: want an http or https URL", s.Webhook.URL)
		}
	}
}

// validateUsers checks the API users and reads their token files.
func (a *Alerting) validateUsers(city *City, bad func(path []any, format string, args ...any)) {
	tokens := map[string]bool{}
	for i := range a.Users {
		u := &a.Users[i]
		at := []any{"users", i}
		if u.Name == "" {
			bad(at, "users[%d]: name is required", i)
		}
		if u.TokenFile != "" {
			if u.Token != "" {
				bad(at, "user %s: give token or token_file, not both", u.Name)
			} else if b, err := os.ReadFile(u.TokenFile); err != nil {
				bad(append(at, "token_file"), "user %s: token_file: %v", u.Name, err)
			} else {
				u.Token = strings.TrimSpace(string(b))
			}
		}
		if len(u.Token) < 16 {
			bad(at, "user %s: the token must be at least 16 characters", u.Name)
		}
		if tokens[u.Token] {
			bad(at, "user %s: token used twice", u.Name)
		}
		tokens[u.Token] = true
		if u.Company != "" && city != nil {
			found := false
			for _, c := range city.Companies {
				found = found || c.ID == u.Company
			}
			if !found {
				bad(append(at, "company"), "user %s: company %q is not in the city file", u.Name, u.Company)
			}
		}
	}
}

// TemplateCode returns the gateway's id of template name for the
// configured provider; "" when the provider takes free text or none is set.
func (s *SMS) TemplateCode(name string) string {
	c := s.Templates[name]
	switch s.Provider {
	case "aliyun":
		return c.Aliyun
	case "tencent":
		return c.Tencent
	}
	return ""
}

// NeedsTemplateCodes reports whether the provider sends only approved
// templates by id.
func (s *SMS) NeedsTemplateCodes() bool { return s.Provider == "aliyun" || s.Provider == "tencent" }

// ParseQuietHours parses a quiet-hours setting: "HH:MM-HH:MM", or "" or
// "none" for none (nil).
func ParseQuietHours(s string) (*Window, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var w Window
	if err := w.UnmarshalText([]byte(s)); err != nil {
		return nil, err
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	return &w, nil
}

func validLang(l string) bool { return l == "zh-CN" || l == "en" }

// OnDuty reports whether one of the group's shifts holds t, read in loc.
// A group without shifts is always on duty. A shift that crosses midnight
// counts from the day it starts: a Monday 20:00-06:00 shift holds at
// Tuesday 03:00, and one dated 2026-12-31 holds at 2027-01-01 02:00.
func (g *Group) OnDuty(t time.Time, loc *time.Location) bool {
	if len(g.Shifts) == 0 {
		return true
	}
	day, sec := wallClock(t, loc)
	today := time.Date(day.Year, time.Month(day.Month), day.Day, 12, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)
	for i := range g.Shifts {
		s := &g.Shifts[i]
		h := s.Hours
		if h == (Window{}) {
			h = Window{0, daySeconds}
		}
		if h.Start < h.End {
			if h.Start <= sec && sec < h.End && s.startsOn(today) {
				return true
			}
			continue
		}
		if sec >= h.Start && s.startsOn(today) || sec < h.End && s.startsOn(yesterday) {
			return true
		}
	}
	return false
}

// startsOn reports whether the shift starts on the calendar day of d
// (a UTC noon standing for a local date).
func (s *Shift) startsOn(d time.Time) bool {
	if len(s.Dates) > 0 {
		y, m, dd := d.Date()
		return slices.Contains(s.Dates, Date{y, int(m), dd})
	}
	if len(s.Days) == 0 {
		return true
	}
	for _, name := range s.Days {
		if weekdayNames[strings.ToLower(name)] == d.Weekday() {
			return true
		}
	}
	return false
}

// Covers reports whether the group covers district; a group without
// districts covers all, and an unknown district ("") reaches only those.
func (g *Group) Covers(district string) bool {
	return len(g.Districts) == 0 || district != "" && slices.Contains(g.Districts, district)
}

// Person returns the person with id, or nil.
func (a *Alerting) Person(id string) *Person {
	for i := range a.People {
		if a.People[i].ID == id {
			return &a.People[i]
		}
	}
	return nil
}
