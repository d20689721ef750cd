package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// alertingFile writes an alerting file (and any files it names) to a
// fresh directory and returns its path.
func alertingFile(t *testing.T, doc string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "alerting.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// alertingLine returns the 1-based line of doc holding text, which must
// appear on exactly one line.
func alertingLine(t *testing.T, doc, text string) int {
	t.Helper()
	line := 0
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, text) {
			if line != 0 {
				t.Fatalf("%q is on lines %d and %d", text, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%q is not in the file", text)
	}
	return line
}

// dutyWindow parses "HH:MM-HH:MM".
func dutyWindow(t *testing.T, s string) Window {
	t.Helper()
	var w Window
	if err := w.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return w
}

// weifang is the city the alerting files are checked against.
func weifang() *City {
	return &City{
		Name:       "潍坊市",
		RegionCode: "370700",
		Districts:  []District{{Name: "奎文区"}, {Name: "潍城区"}},
		Companies:  []Company{{ID: "C1", Name: "潍坊测试运输有限公司"}},
	}
}

func TestLoadAlerting(t *testing.T) {
	doc := `people:
  - id: wang
    name: 王伟
    phone: "+8613800000001"
  - id: li
    name: 李娜
    phone: "+8613800000002"
    lang: en
    quiet_hours: none
    max_per_hour: 5
  - id: zhao
    name: 赵强
    phone: "+8613800000003"
    quiet_hours: "23:30-06:00"
groups:
  - id: night-kuiwen
    name: 奎文区夜间联合巡查
    kind: inspection
    members: [wang, li]
    districts: [奎文区]
    shifts:
      - days: [mon, tue]
        hours: "20:00-06:00"
      - dates: [2026-12-31]
  - id: leaders
    name: 值班领导
    kind: escalation
    tier: 1
    members: [zhao]
sms:
  provider: aliyun
  aliyun:
    access_key_id: LTAI5tExample
    access_key_secret_file: secrets/aliyun.key
    sign_name: 潍坊城管
  templates:
    uncovered_load: {aliyun: SMS_100000001, tencent: "1000001"}
users:
  - name: 值班室
    token_file: duty.token
  - name: 鲁潍运输
    token: 0123456789abcdef-c1
    company: C1
`
	path := alertingFile(t, doc, map[string]string{
		"secrets/aliyun.key": "  aliyun-secret-0001\n",
		"duty.token":         "duty-room-token-0001\n",
	})
	a, err := LoadAlerting(path, weifang())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)

	if a.Path() != path {
		t.Errorf("path %q, want %q", a.Path(), path)
	}
	if a.Retention != 2160*time.Hour || a.FlapWindow != 5*time.Minute {
		t.Errorf("retention %v, flap window %v: want 2160h, 5m", a.Retention, a.FlapWindow)
	}
	if want := (PersonDefaults{Lang: "zh-CN", QuietHours: "22:00-07:00", MaxPerHour: 20}); a.Defaults != want {
		t.Errorf("defaults %+v, want %+v", a.Defaults, want)
	}

	night := &Window{22 * 3600, 7 * 3600}
	for _, want := range []struct {
		id         string
		lang       string
		maxPerHour int
		quiet      *Window
	}{
		{"wang", "zh-CN", 20, night},                    // everything from the defaults
		{"li", "en", 5, nil},                            // her own settings; "none" is no quiet hours
		{"zhao", "zh-CN", 20, &Window{84600, 6 * 3600}}, // his own quiet hours
	} {
		p := a.Person(want.id)
		if p == nil {
			t.Errorf("person %s: not found", want.id)
			continue
		}
		if p.Lang != want.lang || p.MaxPerHour != want.maxPerHour || !reflect.DeepEqual(p.Quiet, want.quiet) {
			t.Errorf("person %s: lang %q, max %d/h, quiet %v; want %q, %d/h, %v",
				want.id, p.Lang, p.MaxPerHour, p.Quiet, want.lang, want.maxPerHour, want.quiet)
		}
	}
	if p := a.Person("nobody"); p != nil {
		t.Errorf("Person(nobody) = %+v, want nil", p)
	}

	if len(a.Groups) != 2 {
		t.Fatalf("%d groups, want 2", len(a.Groups))
	}
	shifts := []Shift{
		{Days: []string{"mon", "tue"}, Hours: Window{20 * 3600, 6 * 3600}},
		{Dates: []Date{{2026, 12, 31}}, Hours: Window{0, daySeconds}}, // no hours: the whole day
	}
	if g := a.Groups[0]; g.Kind != GroupInspection || !reflect.DeepEqual(g.Shifts, shifts) {
		t.Errorf("group %s: kind %q, shifts %+v; want inspection, %+v", g.ID, g.Kind, g.Shifts, shifts)
	}
	if g := a.Groups[1]; g.Kind != GroupEscalation || g.Tier != 1 {
		t.Errorf("group %s: kind %q tier %d, want escalation tier 1", g.ID, g.Kind, g.Tier)
	}

	after := map[string]time.Duration{SeverityCritical: 10 * time.Minute, SeverityMajor: 30 * time.Minute}
	if !reflect.DeepEqual(a.Escalation.After, after) {
		t.Errorf("escalation.after %v, want %v", a.Escalation.After, after)
	}

	s := a.SMS
	if s.Provider != "aliyun" || s.RatePerSecond != 10 || s.MaxAttempts != 8 || s.Timeout != 10*time.Second {
		t.Errorf("sms %q, %g/s, %d attempts, timeout %v; want aliyun, 10/s, 8, 10s", s.Provider, s.RatePerSecond, s.MaxAttempts, s.Timeout)
	}
	if s.Aliyun.AccessKeySecret != "aliyun-secret-0001" {
		t.Errorf("aliyun secret %q, want the trimmed contents of secrets/aliyun.key", s.Aliyun.AccessKeySecret)
	}
	if want := filepath.Join(dir, "secrets/aliyun.key"); s.Aliyun.AccessKeySecretFile != want {
		t.Errorf("aliyun secret file %q, want %q (beside the alerting file)", s.Aliyun.AccessKeySecretFile, want)
	}
	if got := s.TemplateCode("uncovered_load"); got != "SMS_100000001" {
		t.Errorf("template uncovered_load: %q, want SMS_100000001", got)
	}

	if want := (CAP{Sender: "urbanwatch@370700", SenderName: "潍坊市", Status: "Actual"}); a.CAP != want {
		t.Errorf("cap %+v, want %+v", a.CAP, want)
	}

	users := []APIUser{
		{Name: "值班室", Token: "duty-room-token-0001", TokenFile: filepath.Join(dir, "duty.token")},
		{Name: "鲁潍运输", Token: "0123456789abcdef-c1", Company: "C1"},
	}
	if !reflect.DeepEqual(a.Users, users) {
		t.Errorf("users %+v, want %+v", a.Users, users)
	}
}

// TestLoadAlertingEmpty: an empty file, or one with only a few keys, takes
// the defaults for the rest: SMS to the log, and no city means no CAP
// sender to derive.
func TestLoadAlertingEmpty(t *testing.T) {
	for _, c := range []struct {
		name, doc  string
		city       *City
		sender     string
		senderName string
	}{
		{"empty file, 潍坊", "", weifang(), "urbanwatch@370700", "潍坊市"},
		{"comment only, another city", "# nobody to tell yet\n", &City{Name: "淄博市", RegionCode: "370300"}, "urbanwatch@370300", "淄博市"},
		{"own sender, no city", "cap:\n  sender: weifang-cgj\n  sender_name: 潍坊市城市管理局\n", nil, "weifang-cgj", "潍坊市城市管理局"},
		{"no city", "", nil, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := LoadAlerting(alertingFile(t, c.doc, nil), c.city)
			if err != nil {
				t.Fatal(err)
			}
			if a.SMS.Provider != "log" || a.SMS.NeedsTemplateCodes() || a.SMS.RatePerSecond != 10 || a.SMS.MaxAttempts != 8 || a.SMS.Timeout != 10*time.Second {
				t.Errorf("sms %+v, want the log with rate 10, 8 attempts, 10s", a.SMS)
			}
			if a.Retention != 2160*time.Hour || a.FlapWindow != 5*time.Minute || a.Defaults.Lang != "zh-CN" || a.Defaults.MaxPerHour != 20 {
				t.Errorf("retention %v, flap %v, defaults %+v", a.Retention, a.FlapWindow, a.Defaults)
			}
			if a.CAP.Status != "Actual" || a.CAP.Sender != c.sender || a.CAP.SenderName != c.senderName {
				t.Errorf("cap %+v, want Actual from %q (%q)", a.CAP, c.sender, c.senderName)
			}
		})
	}
}

// TestEscalationAfter: the default applies only when escalation.after is
// left out; a file that sets it names every severity that escalates.
func TestEscalationAfter(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      map[string]time.Duration
	}{
		{"left out", "retention: 720h\n",
			map[string]time.Duration{SeverityCritical: 10 * time.Minute, SeverityMajor: 30 * time.Minute}},
		{"escalation without after", "escalation: {}\n",
			map[string]time.Duration{SeverityCritical: 10 * time.Minute, SeverityMajor: 30 * time.Minute}},
		{"critical only: major does not escalate", "escalation:\n  after:\n    critical: 5m\n",
			map[string]time.Duration{SeverityCritical: 5 * time.Minute}},
		{"every severity", "escalation:\n  after: {minor: 4h, warning: 2h, major: 1h, critical: 15m}\n",
			map[string]time.Duration{SeverityMinor: 4 * time.Hour, SeverityWarning: 2 * time.Hour,
				SeverityMajor: time.Hour, SeverityCritical: 15 * time.Minute}},
		{"empty: nothing escalates", "escalation:\n  after: {}\n", map[string]time.Duration{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := LoadAlerting(alertingFile(t, c.doc, nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Escalation.After, c.want) {
				t.Errorf("escalation.after %v, want %v", a.Escalation.After, c.want)
			}
		})
	}
	// One load must not change the defaults of the next.
	if got := DefaultAlerting().Escalation.After; len(got) != 2 || got[SeverityCritical] != 10*time.Minute {
		t.Errorf("DefaultAlerting().Escalation.After = %v after the loads", got)
	}
}

// TestLoadAlertingErrors: every problem of a file is reported at once, in
// one error, each as "file:line: problem".
func TestLoadAlertingErrors(t *testing.T) {
	type problem struct {
		at  string // text on the line it is reported at
		msg string // {dir} stands for the file's directory
	}
	for _, c := range []struct {
		name string
		doc  string
		city *City
		want []problem
	}{
		{
			name: "people, groups, escalation, cap and users",
			city: weifang(),
			doc: `people:
  - id: wang
    name: 王伟
    phone: "13800000001"
  - id: wang # the same id again
    name: 王伟（二）
    phone: "+8613800000002"
groups:
  - id: night
    name: 夜间巡查
    kind: patrol
    members: [wang, liu]
    districts: [奎文区, 坊子新区]
    shifts:
      - hours: "20:00-06:00"
        days:
          - mon
          - funday
      - days: [sat]
        dates: [2026-10-01]
  - id: leaders
    name: 值班领导
    kind: escalation
    members: [wang]
  - id: public
    name: 公众预警
    kind: public
    tier: 2
    members: [wang]
escalation:
  after:
    critical: 10m
    urgent: 5m
cap:
  status: Live
users:
  - name: 值班室
    token: short
  - name: 指挥中心
    token: 0123456789abcdef
  - name: 大屏
    token: 0123456789abcdef
  - name: 鲁潍运输
    token: fedcba9876543210
    company: C9
`,
			want: []problem{
				{`phone: "13800000001"`, `person wang: phone "13800000001": want E.164, e.g. +8613800000000`},
				{"the same id again", `people[1]: id "wang" is used twice`},
				{"kind: patrol", `group night: kind "patrol": want inspection, flood_duty, public or escalation`},
				{"liu", `group night: member "liu" is not in people`},
				{"坊子新区", `group night: district "坊子新区" is not in the city's districts`},
				{"funday", `group night: shift 1: day "funday": want mon, tue, wed, thu, fri, sat or sun`},
				{"- days: [sat]", "group night: shift 2: give days or dates, not both"},
				{"- id: leaders", "group leaders: an escalation group needs tier 1, 2, …"},
				{"tier: 2", "group public: tier is for escalation groups"},
				{"urgent: 5m", `escalation.after: severity "urgent": want minor, warning, major or critical`},
				{"status: Live", `cap.status "Live": want Actual, Exercise or Test`},
				{"- name: 值班室", "user 值班室: the token must be at least 16 characters"},
				{"- name: 大屏", "user 大屏: token used twice"},
				{"company: C9", `user 鲁潍运输: company "C9" is not in the city file`},
			},
		},
		{
			name: "no city: districts and companies are not checked",
			doc: `people:
  - id: wang
    name: 王伟
    phone: "138 0000 0001"
groups:
  - id: night
    name: 夜间巡查
    kind: inspection
    members: [wang]
    districts: [坊子新区]
users:
  - name: 鲁潍运输
    token: fedcba9876543210
    company: C9
`,
			want: []problem{
				{"phone:", `person wang: phone "138 0000 0001": want E.164`},
			},
		},
		{
			name: "decoding: unknown key, empty window",
			city: weifang(),
			doc: `retention: 720h
colour: red
groups:
  - id: night
    name: 夜间巡查
    kind: inspection
    members: [wang]
    shifts:
      - hours: "08:00-08:00"
`,
			// Validation waits for a file that decodes: wang is not
			// reported missing from people.
			want: []problem{
				{"colour", "field colour not found in type config.Alerting"},
				{"08:00-08:00", `window "08:00-08:00": empty window`},
			},
		},
		{
			name: "unknown sms provider",
			doc:  "sms:\n  provider: carrier-pigeon\n",
			want: []problem{
				{"provider:", `sms.provider "carrier-pigeon": want one of log, aliyun, tencent, twilio, webhook`},
			},
		},
		{
			name: "aliyun without access_key_id and sign_name",
			doc:  "sms:\n  provider: aliyun\n  aliyun:\n    access_key_secret: s3cr3t\n",
			want: []problem{
				{"aliyun:", "sms.aliyun.access_key_id is required for provider aliyun"},
				{"aliyun:", "sms.aliyun.sign_name is required for provider aliyun"},
			},
		},
		{
			name: "aliyun secret inline and as a file",
			doc: `sms:
  provider: aliyun
  aliyun:
    access_key_id: LTAI5tExample
    access_key_secret: s3cr3t
    access_key_secret_file: aliyun.key
    sign_name: 潍坊城管
`,
			want: []problem{
				{"aliyun:", "sms.aliyun: give access_key_secret or access_key_secret_file, not both"},
			},
		},
		{
			name: "tencent secret file missing",
			doc: `sms:
  provider: tencent
  tencent:
    secret_id: AKIDExample
    secret_key_file: secrets/tencent.key
    sdk_app_id: "1400000000"
    sign_name: 潍坊城管
`,
			want: []problem{
				{"secret_key_file:", "sms.tencent.secret_key_file: open {dir}/secrets/tencent.key: no such file or directory"},
				{"tencent:", "sms.tencent.secret_key is required for provider tencent"},
			},
		},
		{
			name: "webhook secret file missing",
			doc:  "sms:\n  provider: webhook\n  webhook:\n    url: https://sms.weifang.example/send\n    secret_file: hook.key\n",
			want: []problem{
				{"secret_file:", "sms.webhook.secret_file: open {dir}/hook.key: no such file or directory"},
			},
		},
		{
			name: "webhook url not http",
			doc:  "sms:\n  provider: webhook\n  webhook:\n    url: ftp://sms.weifang.example/send\n",
			want: []problem{
				{"url:", `sms.webhook.url "ftp://sms.weifang.example/send": want an http or https URL`},
			},
		},
		{
			name: "twilio without from or messaging_service_sid",
			doc:  "sms:\n  provider: twilio\n  twilio:\n    account_sid: AC0000\n    auth_token: t0ken\n",
			want: []problem{
				{"twilio:", "sms.twilio: from or messaging_service_sid is required"},
			},
		},
		{
			name: "user token file missing",
			doc:  "users:\n  - name: 值班室\n    token_file: duty.token\n",
			want: []problem{
				{"token_file:", "user 值班室: token_file: open {dir}/duty.token: no such file or directory"},
				{"- name: 值班室", "user 值班室: the token must be at least 16 characters"},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := alertingFile(t, c.doc, nil)
			_, err := LoadAlerting(path, c.city)
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.Split(err.Error(), "\n")
			for _, p := range c.want {
				prefix := fmt.Sprintf("%s:%d: ", path, alertingLine(t, c.doc, p.at))
				msg := strings.ReplaceAll(p.msg, "{dir}", filepath.Dir(path))
				if !slices.ContainsFunc(got, func(g string) bool {
					return strings.HasPrefix(g, prefix) && strings.Contains(g, msg)
				}) {
					t.Errorf("want %s%s\ngot:\n%s", prefix, msg, err)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("%d errors, want %d:\n%s", len(got), len(c.want), err)
			}
		})
	}
}

func TestGroupOnDuty(t *testing.T) {
	sh := shanghai(t)
	at := func(s string) time.Time {
		tt, err := time.ParseInLocation("2006-01-02 15:04:05", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	mondayNights := &Group{ID: "night", Shifts: []Shift{{Days: []string{"mon"}, Hours: dutyWindow(t, "20:00-06:00")}}}
	newYearsEve := &Group{ID: "holiday", Shifts: []Shift{{Dates: []Date{{2026, 12, 31}}, Hours: dutyWindow(t, "22:00-02:00")}}}
	always := &Group{ID: "leaders"}
	saturdays := &Group{ID: "weekend", Shifts: []Shift{{Days: []string{"Sat"}}}}
	dayAndNight := &Group{ID: "flood", Shifts: []Shift{
		{Hours: dutyWindow(t, "08:00-20:00")},
		{Days: []string{"fri"}, Hours: dutyWindow(t, "20:00-08:00")},
	}}
	for _, c := range []struct {
		name string
		g    *Group
		t    time.Time
		want bool
	}{
		{"Monday's shift starts at 20:00", mondayNights, at("2026-11-23 20:00:00"), true},
		{"not a second before", mondayNights, at("2026-11-23 19:59:59"), false},
		{"Monday's shift holds on Tuesday at 03:00", mondayNights, at("2026-11-24 03:00:00"), true},
		{"and ends at 06:00", mondayNights, at("2026-11-24 06:00:00"), false},
		{"Monday 03:00 would be Sunday's shift", mondayNights, at("2026-11-23 03:00:00"), false},
		{"Tuesday evening has no shift", mondayNights, at("2026-11-24 21:00:00"), false},
		{"the next Monday again", mondayNights, at("2026-11-30 23:59:59"), true},

		{"New Year's Eve at 23:00", newYearsEve, at("2026-12-31 23:00:00"), true},
		{"New Year's Day at 01:00, from the 31st", newYearsEve, at("2027-01-01 01:00:00"), true},
		{"New Year's Day at 02:00", newYearsEve, at("2027-01-01 02:00:00"), false},
		{"the 31st at 01:00 is the 30th's night", newYearsEve, at("2026-12-31 01:00:00"), false},
		{"New Year's Day at 23:00", newYearsEve, at("2027-01-01 23:00:00"), false},

		{"no shifts: Monday 03:00", always, at("2026-11-23 03:00:00"), true},
		{"no shifts: New Year's Day", always, at("2027-01-01 12:00:00"), true},

		{"no hours: Saturday at midnight", saturdays, at("2026-11-28 00:00:00"), true},
		{"no hours: Saturday just before midnight", saturdays, at("2026-11-28 23:59:59"), true},
		{"no hours: Friday just before midnight", saturdays, at("2026-11-27 23:59:59"), false},
		{"no hours: Sunday at midnight", saturdays, at("2026-11-29 00:00:00"), false},

		{"every day shift", dayAndNight, at("2026-11-24 12:00:00"), true},
		{"Tuesday night", dayAndNight, at("2026-11-24 22:00:00"), false},
		{"Friday night", dayAndNight, at("2026-11-27 22:00:00"), true},
		{"Friday's night on Saturday morning", dayAndNight, at("2026-11-28 07:59:59"), true},

		{"12:30 UTC is Monday 20:30 in Weifang", mondayNights, time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC), true},
		{"11:59 UTC is Monday 19:59 in Weifang", mondayNights, time.Date(2026, 11, 23, 11, 59, 0, 0, time.UTC), false},
		{"Monday 21:30 UTC is Tuesday 05:30 in Weifang", mondayNights, time.Date(2026, 11, 23, 21, 30, 0, 0, time.UTC), true},
		{"Sunday 19:00 UTC is Monday 03:00 in Weifang", mondayNights, time.Date(2026, 11, 22, 19, 0, 0, 0, time.UTC), false},
	} {
		if got := c.g.OnDuty(c.t, sh); got != c.want {
			t.Errorf("%s: group %s on duty at %s = %v, want %v", c.name, c.g.ID, c.t.In(sh).Format("Mon 2006-01-02 15:04:05"), got, c.want)
		}
	}
}

func TestGroupCovers(t *testing.T) {
	citywide := &Group{ID: "public"}
	kuiwen := &Group{ID: "night-kuiwen", Districts: []string{"奎文区", "潍城区"}}
	for _, c := range []struct {
		g        *Group
		district string
		want     bool
	}{
		{citywide, "奎文区", true},
		{citywide, "寿光市", true},
		{citywide, "", true}, // an alert whose district is unknown
		{kuiwen, "奎文区", true},
		{kuiwen, "潍城区", true},
		{kuiwen, "寿光市", false},
		{kuiwen, "", false},
	} {
		if got := c.g.Covers(c.district); got != c.want {
			t.Errorf("group %s covers %q = %v, want %v", c.g.ID, c.district, got, c.want)
		}
	}
}

func TestParseQuietHours(t *testing.T) {
	for _, c := range []struct {
		in   string
		want *Window
		err  string
	}{
		{"", nil, ""},
		{"none", nil, ""},
		{" none ", nil, ""},
		{"22:00-07:00", &Window{22 * 3600, 7 * 3600}, ""},
		{"12:00-14:00", &Window{12 * 3600, 14 * 3600}, ""},
		{"25:00-07:00", nil, `"25:00": hours run to 23`},
		{"08:00-08:00", nil, "empty window"},
		{"22:00", nil, "want HH:MM-HH:MM"},
		{"off", nil, "want HH:MM-HH:MM"},
	} {
		got, err := ParseQuietHours(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseQuietHours(%q): error %v, want one with %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("ParseQuietHours(%q): %v", c.in, err)
		case !reflect.DeepEqual(got, c.want):
			t.Errorf("ParseQuietHours(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSMSTemplateCode(t *testing.T) {
	templates := map[string]TemplateCodes{
		"uncovered_load": {Aliyun: "SMS_100000001", Tencent: "1000001"},
		"escalated":      {Aliyun: "SMS_100000002"},
	}
	for _, c := range []struct {
		provider  string
		needs     bool
		uncovered string
		escalated string
	}{
		{"aliyun", true, "SMS_100000001", "SMS_100000002"},
		{"tencent", true, "1000001", ""},
		{"twilio", false, "", ""},
		{"webhook", false, "", ""},
		{"log", false, "", ""},
	} {
		s := &SMS{Provider: c.provider, Templates: templates}
		if got := s.NeedsTemplateCodes(); got != c.needs {
			t.Errorf("%s: NeedsTemplateCodes = %v, want %v", c.provider, got, c.needs)
		}
		if got := s.TemplateCode("uncovered_load"); got != c.uncovered {
			t.Errorf("%s: TemplateCode(uncovered_load) = %q, want %q", c.provider, got, c.uncovered)
		}
		if got := s.TemplateCode("escalated"); got != c.escalated {
			t.Errorf("%s: TemplateCode(escalated) = %q, want %q", c.provider, got, c.escalated)
		}
		if got := s.TemplateCode("resolved"); got != "" {
			t.Errorf("%s: TemplateCode(resolved), which has no template, = %q", c.provider, got)
		}
	}
}
