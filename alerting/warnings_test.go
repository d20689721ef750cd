package alerting

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

func rain(level string, mm float64) map[string]any {
	d := map[string]any{"level": level, "threshold_mm": 50.0, "window_h": 3.0,
		"blue_mm": mm, "yellow_mm": mm, "orange_mm": mm, "red_mm": mm}
	if level == "yellow" {
		d["window_h"] = 6.0
	}
	return d
}

func TestRainstormBecomesCAPAlertUpdateCancel(t *testing.T) {
	start := at(0, 14, 0)
	r := newRig(t, start, testAlerting)
	first := gaugeAlert("rainstorm", "warning", telemetry.AlertFiring, 1, start, start, rain("yellow", 52.4))
	r.apply(first)
	r.dispatch()
	r.clk.Add(40 * time.Minute)
	r.apply(gaugeAlert("rainstorm", "major", telemetry.AlertFiring, 2, start, r.clk.Now(), rain("orange", 55.1)))
	r.dispatch()
	r.clk.Add(3 * time.Hour)
	resolved := gaugeAlert("rainstorm", "minor", telemetry.AlertResolved, 3, start, r.clk.Now(), map[string]any{"level": ""})
	r.apply(resolved)
	r.dispatch()
	if n := len(r.get(first.ID).CAP); n != 2 {
		t.Fatalf("%d CAP messages before the flap window passed, want 2 (no Cancel yet)", n)
	}
	r.clk.Add(5 * time.Minute)
	r.tick()
	r.dispatch()

	a := r.get(first.ID)
	if len(a.CAP) != 3 {
		t.Fatalf("%d CAP messages, want Alert, Update, Cancel", len(a.CAP))
	}
	var msgs []*cap.Message
	for i, want := range []string{"Alert", "Update", "Cancel"} {
		c := a.CAP[i]
		testenv.ValidCAP(t, []byte(c.XML))
		m, err := cap.Parse([]byte(c.XML))
		if err != nil {
			t.Fatal(err)
		}
		if m.MsgType != want || m.Identifier != c.Identifier {
			t.Errorf("message %d: %s %s, want %s", i, m.MsgType, m.Identifier, want)
		}
		if len(m.References) != i {
			t.Errorf("%s references %d earlier messages, want %d", want, len(m.References), i)
		}
		for j, ref := range m.References {
			if ref.Identifier != msgs[j].Identifier {
				t.Errorf("%s reference %d is %s, want %s", want, j, ref.Identifier, msgs[j].Identifier)
			}
		}
		if !strings.HasPrefix(m.Identifier, "370700-") {
			t.Errorf("identifier %s does not start with the region code", m.Identifier)
		}
		msgs = append(msgs, m)
	}
	if h := a.CAP[1].Headline; !strings.Contains(h, "橙色") {
		t.Errorf("update headline %q does not name orange", h)
	}
	// Each document published once, retained, on the subject's topic.
	pubs := r.pub.all()
	if len(pubs) != 3 {
		t.Fatalf("%d CAP publications, want 3", len(pubs))
	}
	for i, p := range pubs {
		if p.topic != "urbanwatch/cap/rainstorm/WF-R017" || !p.retain || p.payload != a.CAP[i].XML {
			t.Errorf("publication %d: %s retain=%v", i, p.topic, p.retain)
		}
	}
	// The people told of the warning are told of its upgrade and that it
	// is lifted; the downgrade at the end is not a page.
	lifted := r.gw.to(phonePublic)
	if len(lifted) != 3 || lifted[1].Template != "rainstorm" || lifted[2].Template != TemplateResolved {
		t.Errorf("the public group got %d messages, want the warning, its upgrade and its lifting", len(lifted))
	} else if !strings.Contains(lifted[1].Text, "橙色") || !strings.Contains(lifted[2].Text, "【解除】暴雨预警") {
		t.Errorf("texts %q, %q", lifted[1].Text, lifted[2].Text)
	}

	// The feed lists them newest first; each document is served.
	srv := httptest.NewServer(r.mg.Handler())
	defer srv.Close()
	body := fetch(t, srv.URL+"/cap/feed.xml", http.StatusOK)
	testenv.XMLLint(t, "feed.xml", []byte(body))
	var feed struct {
		Entries []struct {
			Category struct {
				Term string `xml:"term,attr"`
			} `xml:"category"`
			Links []struct {
				Href string `xml:"href,attr"`
				Type string `xml:"type,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(body), &feed); err != nil {
		t.Fatal(err)
	}
	if len(feed.Entries) != 3 || feed.Entries[0].Category.Term != "Cancel" || feed.Entries[2].Category.Term != "Alert" {
		t.Fatalf("feed entries %+v", feed.Entries)
	}
	for _, l := range feed.Entries[0].Links {
		if l.Type == cap.ContentType {
			doc := fetch(t, l.Href, http.StatusOK)
			if doc != a.CAP[2].XML {
				t.Error("the feed's link does not serve the Cancel document")
			}
		}
	}
	fetch(t, srv.URL+"/cap/370700-UW-19700101000000-000000.xml", http.StatusNotFound)
}

func TestWaterloggingReopenedWithinFlapWindowKeepsItsCAPChain(t *testing.T) {
	start := at(0, 15, 0)
	r := newRig(t, start, testAlerting)
	ev := gaugeAlert("waterlogging", "warning", telemetry.AlertFiring, 1, start, start,
		map[string]any{"level": "warning", "depth_cm": 16.0})
	r.apply(ev)
	r.dispatch()
	r.clk.Add(20 * time.Minute)
	r.apply(gaugeAlert("waterlogging", "warning", telemetry.AlertResolved, 2, start, r.clk.Now(), map[string]any{"depth_cm": 11.0}))
	back := r.clk.Add(2 * time.Minute)
	again := gaugeAlert("waterlogging", "critical", telemetry.AlertFiring, 1, back, back,
		map[string]any{"level": "road_closure", "depth_cm": 27.0})
	r.apply(again)
	r.dispatch()
	a := r.get(ev.ID)
	if a.Reopened != 1 || len(a.CAP) != 2 || a.CAP[1].MsgType != "Update" {
		t.Fatalf("reopened %d, CAP %d (last %s); want 1 and Alert then Update", a.Reopened, len(a.CAP), a.CAP[len(a.CAP)-1].MsgType)
	}
	// The rise to a road closure pages again (severity rose).
	if got := r.gw.to(phoneFlood); len(got) != 2 || !strings.Contains(got[1].Text, "道路封闭") {
		t.Errorf("flood duty got %d messages after the rise to a closure", len(got))
	}
	for _, c := range a.CAP {
		testenv.ValidCAP(t, []byte(c.XML))
	}
}

func fetch(t *testing.T, u string, want int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d\n%s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

// call makes an API request with an optional bearer token.
func call(t *testing.T, method, u, token, body string, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d\n%s", method, u, resp.StatusCode, want, b)
	}
	return string(b)
}

func TestAPI(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, testAlerting)
	mine := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	other := truckAlert("no_permit", "major", telemetry.AlertFiring, 1, start, start)
	other.Subject.ID, other.Subject.Company, other.Subject.District = "鲁G·B0002", "C02", "潍城区"
	other.ID = telemetry.AlertID(other.Rule, other.Subject.ID, start)
	r.clk.Add(time.Second)
	flood := gaugeAlert("waterlogging", "warning", telemetry.AlertFiring, 1, start, start,
		map[string]any{"level": "warning", "depth_cm": 16.0})
	r.apply(mine, other)
	r.clk.Add(time.Second)
	r.apply(flood)
	r.dispatch()
	srv := httptest.NewServer(r.mg.Handler())
	defer srv.Close()
	base := srv.URL + "/api/alerts"
	const dispatcher, company = "dispatcher-token-0001", "company-c01-token-0001"
	alertURL := func(id string) string { return base + "/" + url.PathEscape(id) }

	call(t, "GET", base, "", "", http.StatusUnauthorized)
	call(t, "GET", base, "not-a-token-at-all", "", http.StatusUnauthorized)
	list := call(t, "GET", base, dispatcher, "", http.StatusOK)
	if !strings.Contains(list, `"total": 3`) || strings.Index(list, flood.ID) > strings.Index(list, mine.ID) {
		t.Errorf("list: want 3, newest first:\n%s", list)
	}
	for q, want := range map[string]string{
		"?rule=no_permit":                    other.ID,
		"?company=C01":                       mine.ID,
		"?district=潍城区":                      other.ID,
		"?subject=WF-R017":                   flood.ID,
		"?state=firing&limit=1":              flood.ID,
		"?until=2026-11-23T20:00:00%2B08:00": "",
	} {
		body := call(t, "GET", base+q, dispatcher, "", http.StatusOK)
		if want == "" {
			if !strings.Contains(body, `"total": 0`) {
				t.Errorf("%s: want none\n%s", q, body)
			}
			continue
		}
		if !strings.Contains(body, want) || !strings.Contains(body, `"total": 1`) && q != "?state=firing&limit=1" {
			t.Errorf("%s: want only %s\n%s", q, want, body)
		}
	}
	call(t, "GET", base+"?state=open", dispatcher, "", http.StatusBadRequest)
	call(t, "GET", base+"?since=yesterday", dispatcher, "", http.StatusBadRequest)

	// A compliance manager sees their company's trucks only.
	own := call(t, "GET", base, company, "", http.StatusOK)
	if !strings.Contains(own, mine.ID) || strings.Contains(own, other.ID) || strings.Contains(own, flood.ID) {
		t.Errorf("company user's list:\n%s", own)
	}
	call(t, "GET", base+"?company=C02", company, "", http.StatusForbidden)
	call(t, "GET", alertURL(other.ID), company, "", http.StatusNotFound)
	call(t, "POST", alertURL(other.ID)+"/ack", company, `{}`, http.StatusNotFound)

	// One alert with its history; acknowledge; resolve needs a note.
	one := call(t, "GET", alertURL(mine.ID), company, "", http.StatusOK)
	if !strings.Contains(one, `"history"`) || !strings.Contains(one, `"kind": "fired"`) {
		t.Errorf("get:\n%s", one)
	}
	acked := call(t, "POST", alertURL(mine.ID)+"/ack", company, `{"by": "someone else", "note": "司机已联系"}`, http.StatusOK)
	if !strings.Contains(acked, `"acked_by": "张伟"`) {
		t.Errorf("an authenticated user acts under their own name:\n%s", acked)
	}
	call(t, "POST", alertURL(mine.ID)+"/ack", dispatcher, `{}`, http.StatusConflict)
	call(t, "POST", alertURL(mine.ID)+"/resolve", dispatcher, `{}`, http.StatusBadRequest)
	call(t, "POST", alertURL(mine.ID)+"/resolve", dispatcher, `not json`, http.StatusBadRequest)
	res := call(t, "POST", alertURL(mine.ID)+"/resolve", dispatcher, `{"note": "车辆已拦截，篷布已覆盖"}`, http.StatusOK)
	if !strings.Contains(res, `"state": "resolved"`) || !strings.Contains(res, `"resolved_by": "调度员"`) {
		t.Errorf("resolve:\n%s", res)
	}
	call(t, "POST", alertURL(mine.ID)+"/notes", dispatcher, `{"text": "已罚款"}`, http.StatusOK)
	ns := call(t, "GET", alertURL(mine.ID)+"/notifications", dispatcher, "", http.StatusOK)
	if strings.Count(ns, `"state": "sent"`) != 3 {
		t.Errorf("notifications: want 3 sent\n%s", ns)
	}
	call(t, "GET", alertURL("uncovered_load/鲁G·Z9999/20260101T000000.000Z"), dispatcher, "", http.StatusNotFound)
	hist := r.get(mine.ID)
	want := []EventKind{EventFired, EventAcknowledged, EventNote, EventResolved, EventNote, EventNote}
	if got := kinds(hist); strings.Join(toStrings(got), ",") != strings.Join(toStrings(want), ",") {
		t.Errorf("history %v, want %v", got, want)
	}
}

func TestAPIWithoutUsersNeedsAName(t *testing.T) {
	start := at(0, 21, 0)
	r := newRig(t, start, strings.Split(testAlerting, "users:")[0])
	ev := truckAlert("uncovered_load", "warning", telemetry.AlertFiring, 1, start, start)
	r.apply(ev)
	srv := httptest.NewServer(r.mg.Handler())
	defer srv.Close()
	u := srv.URL + "/api/alerts/" + url.PathEscape(ev.ID) + "/ack"
	call(t, "POST", u, "", `{"note": "x"}`, http.StatusBadRequest)
	if body := call(t, "POST", u, "", `{"by": "值班员"}`, http.StatusOK); !strings.Contains(body, `"acked_by": "值班员"`) {
		t.Errorf("ack:\n%s", body)
	}
}

func toStrings(ks []EventKind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

func TestResolvedByHandThenStillHoldingIsAnnouncedAgainWhenItClears(t *testing.T) {
	start := at(0, 14, 0)
	r := newRig(t, start, testAlerting)
	ev := gaugeAlert("rainstorm", "warning", telemetry.AlertFiring, 1, start, start, rain("yellow", 52.0))
	r.apply(ev)
	r.clk.Add(10 * time.Minute)
	if _, err := r.mg.Resolve(ev.ID, "孙值班", "雨已停"); err != nil {
		t.Fatal(err)
	}
	r.clk.Add(10 * time.Minute)
	r.apply(gaugeAlert("rainstorm", "major", telemetry.AlertFiring, 2, start, r.clk.Now(), rain("orange", 58.0)))
	if a := r.get(ev.ID); a.State != StateFiring || a.Announced {
		t.Fatalf("after the rules upgraded it: %s, announced %v", a.State, a.Announced)
	}
	r.clk.Add(time.Hour)
	r.apply(gaugeAlert("rainstorm", "minor", telemetry.AlertResolved, 3, start, r.clk.Now(), map[string]any{"level": ""}))
	r.clk.Add(5 * time.Minute)
	r.tick()
	a := r.get(ev.ID)
	var types []string
	for _, c := range a.CAP {
		types = append(types, c.MsgType)
	}
	if !a.Announced || strings.Join(types, ",") != "Alert,Cancel,Alert,Cancel" {
		t.Errorf("announced %v, CAP %v; want the second chain cancelled too", a.Announced, types)
	}
}
