package alerting

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

func TestLifecycleFiringAcknowledgedResolved(t *testing.T) {
	start := at(0, 21, 0) // Monday 21:00: the night team is on duty, no quiet hours yet
	r := newRig(t, start, testAlerting)
	fire := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start.Add(-30*time.Second), start)
	r.apply(fire)
	r.dispatch()

	// The company's compliance manager and both members of the night team.
	for _, phone := range []string{phoneCompany, phoneNight1, phoneNight2} {
		got := r.gw.to(phone)
		if len(got) != 1 {
			t.Fatalf("%s got %d messages, want 1", phone, len(got))
		}
		if got[0].Template != "uncovered_load" {
			t.Errorf("%s: template %q", phone, got[0].Template)
		}
	}
	if n := len(r.gw.to(phoneDay)); n != 0 {
		t.Errorf("the day team, off duty at 21:00, got %d messages", n)
	}
	zh := r.gw.to(phoneCompany)[0]
	if want := "渣土车鲁G·A0001（潍坊鸢都运输有限公司）20:59在奎文区 36.70650,119.16170未密闭运输，请及时处置。"; zh.Text != want {
		t.Errorf("zh-CN text\n got %s\nwant %s", zh.Text, want)
	}
	if en := r.gw.to(phoneNight2)[0]; !strings.HasPrefix(en.Text, "Muck truck 鲁G·A0001") || en.Lang != "en" {
		t.Errorf("English text for a person with lang en: %q (%s)", en.Text, en.Lang)
	}
	wantParams := []sms.Param{{Name: "plate", Value: "鲁G·A0001"}, {Name: "company", Value: "潍坊鸢都运输有限公司"},
		{Name: "time", Value: "20:59"}, {Name: "place", Value: "奎文区 36.70650,119.16170"}}
	if !slices.Equal(zh.Params, wantParams) {
		t.Errorf("params %v, want %v", zh.Params, wantParams)
	}

	r.clk.Add(2 * time.Minute)
	a, err := r.mg.Acknowledge(fire.ID, "刘队长", "已派人拦截")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateAcknowledged || a.AckedBy != "刘队长" || !a.AckedAt.Equal(r.clk.Now()) {
		t.Fatalf("after ack: state %s by %q at %v", a.State, a.AckedBy, a.AckedAt)
	}
	if _, err := r.mg.Acknowledge(fire.ID, "陈队员", ""); !errors.Is(err, ErrConflict) {
		t.Errorf("a second acknowledgement: %v, want ErrConflict", err)
	}

	r.clk.Add(3 * time.Minute)
	r.apply(truckAlert("uncovered_load", "warning", telemetry.AlertResolved, 2, fire.StartedAt, r.clk.Now()))
	if a := r.get(fire.ID); a.State != StateResolved || a.ResolvedBy != "rules" || a.Announced {
		t.Fatalf("after the rules resolved it: state %s by %q announced %v", a.State, a.ResolvedBy, a.Announced)
	}
	r.clk.Add(5 * time.Minute)
	r.tick()
	r.dispatch()
	a = r.get(fire.ID)
	want := []EventKind{EventFired, EventAcknowledged, EventNote, EventRuleResolved, EventResolved}
	if !slices.Equal(kinds(a), want) {
		t.Errorf("history %v, want %v", kinds(a), want)
	}
	if !a.Announced || r.gw.count() != 3 {
		t.Errorf("announced %v, %d messages; a truck alert's resolution is not sent by SMS", a.Announced, r.gw.count())
	}
	if got := states(a, ChannelSMS); got[NotifySent] != 3 || len(got) != 1 {
		t.Errorf("notification states %v", got)
	}
	if v := r.counter("urbanwatch_notifications_total", "channel", "sms", "result", "sent"); v != 3 {
		t.Errorf("urbanwatch_notifications_total{sms,sent} = %v", v)
	}
	if v := r.counter("urbanwatch_alerts", "rule", "uncovered_load", "state", "resolved"); v != 1 {
		t.Errorf("urbanwatch_alerts{uncovered_load,resolved} = %v", v)
	}
}

func TestFlappingReopensTheSameAlert(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	first := truckAlert("off_route", "warning", telemetry.AlertFiring, 1, start.Add(-time.Minute), start)
	first.Details = map[string]any{"distance_m": 180.0}
	r.apply(first)
	r.dispatch()
	sent := r.gw.count()

	// GPS drift: back on route for 90 s, then off again, three times.
	for i := range 3 {
		cleared := r.clk.Add(time.Minute)
		r.apply(truckAlert("off_route", "warning", telemetry.AlertResolved, 2, r.get(first.ID).Sources[i].startedAt(t), cleared))
		again := r.clk.Add(90 * time.Second)
		ev := truckAlert("off_route", "warning", telemetry.AlertFiring, 1, again, again)
		ev.Details = map[string]any{"distance_m": 120.0}
		r.apply(ev)
		r.tick()
		r.dispatch()
	}
	a := r.get(first.ID)
	if a.State != StateFiring || a.Reopened != 3 || len(a.Sources) != 4 {
		t.Fatalf("state %s reopened %d sources %d, want firing, 3, 4", a.State, a.Reopened, len(a.Sources))
	}
	if r.gw.count() != sent {
		t.Errorf("flapping sent %d more messages", r.gw.count()-sent)
	}
	if all, _ := r.mg.List(Filter{Rule: "off_route"}); len(all) != 1 {
		t.Errorf("%d off_route alerts, want the one", len(all))
	}
	if v := r.counter("urbanwatch_alerts_reopened_total"); v != 3 {
		t.Errorf("reopened counter %v", v)
	}

	// Cleared for longer than the flap window: resolved and announced; a
	// new excursion is a new alert and pages again.
	last := a.Sources[3]
	cleared := r.clk.Add(time.Minute)
	r.apply(truckAlert("off_route", "warning", telemetry.AlertResolved, 2, last.startedAt(t), cleared))
	r.clk.Add(6 * time.Minute)
	r.tick()
	if a := r.get(first.ID); a.State != StateResolved || !a.Announced {
		t.Fatalf("after the flap window: state %s announced %v", a.State, a.Announced)
	}
	later := r.clk.Add(time.Minute)
	r.apply(truckAlert("off_route", "warning", telemetry.AlertFiring, 1, later, later))
	r.dispatch()
	if all, _ := r.mg.List(Filter{Rule: "off_route"}); len(all) != 2 {
		t.Errorf("%d off_route alerts after a real return, want 2", len(all))
	}
	if r.gw.count() != 2*sent {
		t.Errorf("a new alert after the window sent %d messages, want %d", r.gw.count()-sent, sent)
	}
}

// startedAt recovers the start time from a rules alert id.
func (s Source) startedAt(t testing.TB) time.Time {
	i := strings.LastIndexByte(s.ID, '/')
	ts, err := time.Parse("20060102T150405.000Z", s.ID[i+1:])
	if err != nil {
		t.Fatalf("source id %s: %v", s.ID, err)
	}
	return ts
}

func TestQuietHoursHoldLowerSeveritiesButNotCritical(t *testing.T) {
	start := at(0, 23, 0) // Monday 23:00: the company manager is in quiet hours
	r := newRig(t, start, testAlerting)
	warn := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(warn)
	next := r.dispatch()
	if len(r.gw.to(phoneNight1)) != 1 {
		t.Fatal("the night team on duty must be told at once, quiet hours or not")
	}
	if len(r.gw.to(phoneCompany)) != 0 {
		t.Fatal("a warning reached the company manager in quiet hours")
	}
	if want := at(1, 7, 0); !next.Equal(want) {
		t.Errorf("next due %v, want the end of quiet hours %v", next, want)
	}
	if v := r.counter("urbanwatch_outbox_depth"); v != 1 {
		t.Errorf("outbox depth %v, want 1 (held)", v)
	}

	crit := truckAlert("illegal_dumping", "critical", telemetry.AlertFiring, 1, start.Add(time.Minute), start.Add(time.Minute))
	r.clk.Add(time.Minute)
	r.apply(crit)
	r.dispatch()
	if got := r.gw.to(phoneCompany); len(got) != 1 || got[0].Template != "illegal_dumping" {
		t.Fatalf("a critical alert must reach the manager in quiet hours; got %v", got)
	}

	r.clk.Set(at(1, 7, 0))
	r.dispatch()
	got := r.gw.to(phoneCompany)
	if len(got) != 2 || got[1].Template != "uncovered_load" {
		t.Fatalf("at 07:00 the held warning goes out; got %d messages", len(got))
	}
}

func TestHeldMessageDroppedWhenAlertResolvesInQuietHours(t *testing.T) {
	start := at(0, 23, 30)
	r := newRig(t, start, testAlerting)
	ev := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(ev)
	r.dispatch()
	r.clk.Add(10 * time.Minute)
	r.apply(truckAlert("uncovered_load", "warning", telemetry.AlertResolved, 2, start, r.clk.Now()))
	r.clk.Set(at(1, 7, 0))
	r.tick()
	r.dispatch()
	if n := len(r.gw.to(phoneCompany)); n != 0 {
		t.Fatalf("a warning over before quiet hours ended was sent at 07:00 (%d)", n)
	}
	a := r.get(ev.ID)
	if got := states(a, ChannelSMS); got[NotifySuppressed] != 1 {
		t.Errorf("notification states %v, want the held one suppressed", got)
	}
}

func TestRosterShiftCrossingMidnight(t *testing.T) {
	cases := []struct {
		name  string
		when  time.Time
		night bool
		day   bool
	}{
		{"Monday 20:00, the shift starts", at(0, 20, 0), true, false},
		{"Tuesday 03:00, Monday's shift", at(1, 3, 0), true, false},
		{"Tuesday 06:00, the shift has ended", at(1, 6, 0), false, false},
		{"Tuesday 09:00, the day team", at(1, 9, 0), false, true},
		{"Saturday 02:00, Friday's shift", at(5, 2, 0), true, false},
		{"Sunday 02:00: no Saturday shift", at(6, 2, 0), false, false},
		{"Monday 02:00: no Sunday shift", at(7, 2, 0), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.when, testAlerting)
			crit := truckAlert("illegal_dumping", "critical", telemetry.AlertFiring, 1, c.when, c.when)
			r.apply(crit)
			r.dispatch()
			if got := len(r.gw.to(phoneNight1)) == 1; got != c.night {
				t.Errorf("night team told: %v, want %v", got, c.night)
			}
			if got := len(r.gw.to(phoneDay)) == 1; got != c.day {
				t.Errorf("day team told: %v, want %v", got, c.day)
			}
			if len(r.gw.to(phoneCompany)) != 1 {
				t.Error("the company manager hears of a critical alert at any hour")
			}
		})
	}
}

func TestFloodAlertsReachDutyOfficersAndPublicGroups(t *testing.T) {
	start := at(0, 14, 0)
	r := newRig(t, start, testAlerting)
	r.apply(gaugeAlert("sensor_offline", "minor", telemetry.AlertFiring, 1, start, start, map[string]any{}))
	r.dispatch()
	if len(r.gw.to(phoneFlood)) != 1 || len(r.gw.to(phonePublic)) != 0 || len(r.gw.to(phoneCompany)) != 0 {
		t.Fatalf("sensor_offline goes to flood duty only: flood %d public %d company %d",
			len(r.gw.to(phoneFlood)), len(r.gw.to(phonePublic)), len(r.gw.to(phoneCompany)))
	}
	r.apply(gaugeAlert("rainstorm", "warning", telemetry.AlertFiring, 1, start, start,
		map[string]any{"level": "yellow", "yellow_mm": 52.4, "threshold_mm": 50, "window_h": 6}))
	r.dispatch()
	if len(r.gw.to(phoneFlood)) != 2 || len(r.gw.to(phonePublic)) != 1 {
		t.Fatalf("a rainstorm goes to flood duty and the public group: flood %d public %d",
			len(r.gw.to(phoneFlood)), len(r.gw.to(phonePublic)))
	}
	if got, want := r.gw.to(phonePublic)[0].Text, "奎文区胜利街雨量站达到暴雨黄色预警标准：6小时降雨52.4毫米（14:00），请做好防范。"; got != want {
		t.Errorf("rainstorm text\n got %s\nwant %s", got, want)
	}
}

func TestEscalationWhenNobodyAcknowledges(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	crit := truckAlert("illegal_dumping", "critical", telemetry.AlertFiring, 1, start, start)
	warn := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	acked := truckAlert("no_permit", "critical", telemetry.AlertFiring, 1, start, start)
	r.apply(crit, warn, acked)
	if _, err := r.mg.Acknowledge(acked.ID, "刘队长", ""); err != nil {
		t.Fatal(err)
	}
	r.dispatch()

	r.clk.Set(start.Add(9*time.Minute + 59*time.Second))
	r.tick()
	r.dispatch()
	if n := len(r.gw.to(phoneChief)); n != 0 {
		t.Fatalf("escalated before 10 minutes (%d messages)", n)
	}
	r.clk.Set(start.Add(10 * time.Minute))
	r.tick()
	r.dispatch()
	got := r.gw.to(phoneChief)
	if len(got) != 1 || got[0].Template != TemplateEscalated {
		t.Fatalf("tier 1 at 10 min: %v", got)
	}
	if !strings.Contains(got[0].Text, "违规倾倒告警10分钟未确认") {
		t.Errorf("escalation text %q", got[0].Text)
	}
	a := r.get(crit.ID)
	if a.Tier != 1 || !slices.Contains(kinds(a), EventEscalated) {
		t.Errorf("tier %d, history %v", a.Tier, kinds(a))
	}
	if len(r.gw.to(phoneDirector)) != 0 {
		t.Error("tier 2 told at 10 minutes")
	}
	r.clk.Set(start.Add(20 * time.Minute))
	r.tick()
	r.dispatch()
	if len(r.gw.to(phoneDirector)) != 1 || len(r.gw.to(phoneChief)) != 1 {
		t.Errorf("at 20 min: director %d, chief %d messages; want 1 and 1", len(r.gw.to(phoneDirector)), len(r.gw.to(phoneChief)))
	}
	r.clk.Set(start.Add(2 * time.Hour))
	r.tick()
	r.dispatch()
	if r.get(crit.ID).Tier != 2 {
		t.Error("escalated past the last tier")
	}
	if v := r.counter("urbanwatch_escalations_total", "rule", "illegal_dumping"); v != 2 {
		t.Errorf("escalations counter %v, want 2", v)
	}
	for _, id := range []string{warn.ID, acked.ID} {
		if a := r.get(id); a.Tier != 0 {
			t.Errorf("%s escalated (a warning does not; an acknowledged alert does not)", id)
		}
	}
}

func TestPerPersonRateLimit(t *testing.T) {
	start := at(0, 14, 0)
	r := newRig(t, start, testAlerting) // public1 may get 3 an hour
	for i := range 5 {
		ts := start.Add(time.Duration(i) * time.Minute)
		r.clk.Set(ts)
		ev := gaugeAlert("waterlogging", "warning", telemetry.AlertFiring, 1, ts, ts,
			map[string]any{"level": "warning", "depth_cm": 17.0})
		ev.Subject.ID, ev.ID = ev.Subject.ID+string(rune('a'+i)), ev.ID+string(rune('a'+i))
		r.apply(ev)
	}
	r.dispatch()
	if n := len(r.gw.to(phonePublic)); n != 3 {
		t.Fatalf("public group member got %d, want 3 (max_per_hour)", n)
	}
	if v := r.counter("urbanwatch_notifications_total", "channel", "sms", "result", "suppressed"); v != 2 {
		t.Errorf("suppressed counter %v, want 2", v)
	}
	// A critical one is not capped; after an hour the cap has room again.
	r.clk.Set(start.Add(10 * time.Minute))
	closure := gaugeAlert("waterlogging", "critical", telemetry.AlertFiring, 1, r.clk.Now(), r.clk.Now(),
		map[string]any{"level": "road_closure", "depth_cm": 31.0})
	r.apply(closure)
	r.dispatch()
	if n := len(r.gw.to(phonePublic)); n != 4 {
		t.Fatalf("a road closure past the cap: %d messages, want 4", n)
	}
	r.clk.Set(start.Add(71 * time.Minute)) // an hour after the critical one
	ev := gaugeAlert("heavy_rain_1h", "warning", telemetry.AlertFiring, 1, r.clk.Now(), r.clk.Now(), map[string]any{"mm": 21.0})
	ev.Rule, ev.ID = "waterlogging", strings.Replace(ev.ID, "heavy_rain_1h", "waterlogging", 1)+"x"
	ev.Subject.ID += "x"
	ev.Details = map[string]any{"level": "warning", "depth_cm": 16.0}
	r.apply(ev)
	r.dispatch()
	if n := len(r.gw.to(phonePublic)); n != 5 {
		t.Errorf("an hour later: %d messages, want 5", n)
	}
}

func TestGlobalRateLimit(t *testing.T) {
	start := at(0, 14, 0)
	r := newRig(t, start, testAlerting+"sms: {rate_per_second: 2}\n")
	for i := range 3 {
		ev := gaugeAlert("sensor_offline", "minor", telemetry.AlertFiring, 1, start, start, map[string]any{})
		ev.Subject.ID, ev.ID = ev.Subject.ID+string(rune('a'+i)), ev.ID+string(rune('a'+i))
		r.apply(ev)
	}
	next := r.dispatch()
	if r.gw.count() != 2 {
		t.Fatalf("sent %d at once with 2/s, want 2", r.gw.count())
	}
	if want := start.Add(500 * time.Millisecond); !next.Equal(want) {
		t.Errorf("next attempt %v, want %v", next, want)
	}
	r.clk.Set(next)
	r.dispatch()
	if r.gw.count() != 3 {
		t.Errorf("sent %d after half a second, want 3", r.gw.count())
	}
}

func TestRetriesWithBackoffAndNoneOnPermanentErrors(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	r.gw.failNext(phoneNight1, &sms.Error{Provider: "recorder", Status: 503, Retryable: true},
		&sms.Error{Provider: "recorder", Code: "isv.BUSINESS_LIMIT_CONTROL", Retryable: true, RetryAfter: 30 * time.Second})
	r.gw.failNext(phoneNight2, &sms.Error{Provider: "recorder", Code: "isv.MOBILE_NUMBER_ILLEGAL"})
	ev := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(ev)
	next := r.dispatch()
	if want := start.Add(2 * time.Second); !next.Equal(want) {
		t.Fatalf("first retry at %v, want %v (2 s backoff)", next, want)
	}
	r.clk.Set(next)
	next = r.dispatch()
	if want := start.Add(32 * time.Second); !next.Equal(want) {
		t.Fatalf("second retry at %v, want %v (the gateway's 30 s)", next, want)
	}
	r.clk.Set(next)
	r.dispatch()
	a := r.get(ev.ID)
	var n1, n2 *Notification
	for i := range a.Notifications {
		switch a.Notifications[i].Recipient.Phone {
		case phoneNight1:
			n1 = &a.Notifications[i]
		case phoneNight2:
			n2 = &a.Notifications[i]
		}
	}
	if n1.State != NotifySent || n1.Attempts != 3 {
		t.Errorf("retried message: %s after %d attempts", n1.State, n1.Attempts)
	}
	if n2.State != NotifyFailed || n2.Attempts != 1 || !strings.Contains(n2.Why, "MOBILE_NUMBER_ILLEGAL") {
		t.Errorf("permanent error: %s after %d attempts (%s)", n2.State, n2.Attempts, n2.Why)
	}
	if v := r.counter("urbanwatch_notification_retries_total", "channel", "sms"); v != 2 {
		t.Errorf("retries counter %v, want 2", v)
	}
	if v := r.counter("urbanwatch_notifications_total", "result", "failed"); v != 1 {
		t.Errorf("failed counter %v, want 1", v)
	}
}

func TestRetriesGiveUpAfterMaxAttempts(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting+"sms: {max_attempts: 3}\n")
	timeout := &sms.Error{Provider: "recorder", Retryable: true, Message: "timeout"}
	r.gw.failNext(phoneNight1, timeout, timeout, timeout, timeout)
	ev := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(ev)
	for next := r.dispatch(); !next.IsZero(); next = r.dispatch() {
		r.clk.Set(next)
	}
	for _, n := range r.get(ev.ID).Notifications {
		if n.Recipient.Phone == phoneNight1 && (n.State != NotifyFailed || n.Attempts != 3) {
			t.Errorf("%s after %d attempts, want failed after 3", n.State, n.Attempts)
		}
	}
}

func TestRestartNeitherRepeatsNorLoses(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	a1 := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	a2 := truckAlert("illegal_dumping", "critical", telemetry.AlertFiring, 1, start, start)
	r.apply(a1)
	r.dispatch() // a1 sent
	r.apply(a2)  // a2 decided, not sent
	if err := r.mg.Close(); err != nil {
		t.Fatal(err)
	}
	r.open()
	// The journal replays from its last acknowledged position: both again.
	r.apply(a1, a2)
	r.dispatch()
	for _, phone := range []string{phoneCompany, phoneNight1, phoneNight2} {
		if got := r.gw.to(phone); len(got) != 2 || got[0].Template != "uncovered_load" || got[1].Template != "illegal_dumping" {
			t.Errorf("%s: %d messages after the restart, want each alert once", phone, len(got))
		}
	}
	if v := r.counter("urbanwatch_alert_events_duplicate_total"); v != 2 {
		t.Errorf("duplicates counter %v, want 2", v)
	}
}

func TestDamagedStoreTailIsCutAtRestart(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	ev := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(ev)
	r.mg.Close()
	appendGarbage(t, r.dir)
	r.open()
	if a := r.get(ev.ID); a.State != StateFiring {
		t.Fatalf("alert lost with a torn tail: %s", a.State)
	}
	r.dispatch()
	if r.gw.count() != 3 {
		t.Errorf("%d messages after the restart, want 3", r.gw.count())
	}
}

func TestRetentionDropsOldResolvedAlerts(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting+"retention: 48h\n")
	old := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(old)
	r.dispatch()
	r.apply(truckAlert("uncovered_load", "warning", telemetry.AlertResolved, 2, start, start.Add(time.Minute)))
	r.clk.Set(start.Add(24 * time.Hour))
	open := truckAlert("no_permit", "major", telemetry.AlertFiring, 1, r.clk.Now(), r.clk.Now())
	r.apply(open)
	r.tick()
	r.clk.Set(start.Add(49 * time.Hour))
	r.tick()
	if _, err := r.mg.Get(old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an alert resolved 49 h ago with 48 h retention: %v", err)
	}
	if _, err := r.mg.Get(open.ID); err != nil {
		t.Fatalf("an open alert was dropped: %v", err)
	}
	r.mg.Close()
	r.open()
	if _, err := r.mg.Get(old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the dropped alert came back after a restart: %v", err)
	}
}

func TestTemplateGatewayNeedsEveryTemplateID(t *testing.T) {
	cfg := loadSettings(t, testAlerting+`sms:
  provider: aliyun
  aliyun: {access_key_id: id, access_key_secret: secret, sign_name: 潍坊城管}
  templates:
    uncovered_load: {aliyun: SMS_1}
`)
	_, err := New(Options{Dir: t.TempDir(), Config: cfg, City: testCity()})
	if err == nil || !strings.Contains(err.Error(), "illegal_dumping") {
		t.Fatalf("err = %v, want the missing template ids named", err)
	}
}
