package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

func TestSignInLandsOnTheRoleHome(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct{ user, home string }{
		{"admin", "/console/inspect"}, {"insp", "/console/inspect"}, {"duty", "/console/flood"}, {"c01", "/console/inspect"},
	} {
		b := r.browser().signIn(tc.user)
		var me map[string]any
		b.getJSON("/console/api/me", &me)
		if me["home"] != tc.home || me["user"] != tc.user || b.csrf == "" {
			t.Errorf("%s: me = %v", tc.user, me)
		}
		code, _, h := b.get("/")
		if code != http.StatusSeeOther || h.Get("Location") != tc.home {
			t.Errorf("%s: / → %d %s, want %s", tc.user, code, h.Get("Location"), tc.home)
		}
	}
	var me map[string]any
	b := r.browser().signIn("c01")
	b.getJSON("/console/api/me", &me)
	if me["company"] != "C01" || me["company_name"] != r.city.Company("C01").Name {
		t.Errorf("company user's me = %v", me)
	}
}

func TestPagesAndAPIRefuseTheWrongRole(t *testing.T) {
	r := newRig(t)
	anon := r.browser()
	if code, _, h := anon.get("/console/inspect"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login?next=") {
		t.Errorf("anonymous page: %d %s", code, h.Get("Location"))
	}
	if code, _, _ := anon.get("/console/api/trucks"); code != http.StatusUnauthorized {
		t.Errorf("anonymous API: %d", code)
	}
	duty := r.browser().signIn("duty")
	if code, _, h := duty.get("/console/inspect"); code != http.StatusSeeOther || h.Get("Location") != "/console/flood" {
		t.Errorf("duty on the truck map: %d %s", code, h.Get("Location"))
	}
	for _, p := range []string{"/console/api/trucks", "/console/api/report", "/console/api/evidence/x"} {
		if code, _, _ := duty.get(p); code != http.StatusForbidden {
			t.Errorf("duty GET %s: %d, want 403", p, code)
		}
	}
	insp := r.browser().signIn("insp")
	if code, _, _ := insp.get("/console/api/flood"); code != http.StatusForbidden {
		t.Errorf("inspection GET flood: %d, want 403", code)
	}
	if code, body, _ := insp.get("/console/inspect"); code != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("inspection page: %d", code)
	}
	if n := testutil.ToFloat64(r.srv.m.denied.WithLabelValues("role")); n < 4 {
		t.Errorf("denied{role} = %v", n)
	}
}

func TestWrongPasswordsLockTheNameAndTheAddress(t *testing.T) {
	r := newRig(t)
	b := r.browser()
	if code := b.login("insp", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := b.login("nobody", "insp-password-1"); code != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", code)
	}
	for range 4 {
		b.login("insp", "wrong")
	}
	// Five failures for this name: even the right password is refused, with
	// a message saying when to try again; another user at the same address
	// (an office behind one NAT) still signs in.
	if code := r.browser().login("admin", "admin-password-1"); code != http.StatusOK {
		t.Fatalf("another user at the address: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+"/login", strings.NewReader(url.Values{"username": {"insp"}, "password": {"insp-password-1"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "900" ||
		!strings.Contains(body["error"].(string), "15 min") {
		t.Fatalf("locked: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another spelling of the name (U+017F "ſ" folds to "s") is no way
	// around the lock: it is nobody's name.
	if code := b.login("inſp", "insp-password-1"); code != http.StatusUnauthorized {
		t.Fatalf("the locked name spelt with ſ: %d, want 401", code)
	}
	r.clk.Add(16 * time.Minute)
	if code := b.login("insp", "insp-password-1"); code != http.StatusOK {
		t.Fatalf("after the lockout: %d", code)
	}
	// Twenty failures from one address over several names lock the
	// address (four for each user: no name is locked by them).
	for i := range 20 {
		b.login(testUsers[i%5].name, "wrong")
	}
	if code := b.login("duty", "duty-password-1"); code != http.StatusTooManyRequests {
		t.Fatalf("a guessing address: %d, want 429", code)
	}
	if n := testutil.ToFloat64(r.srv.m.logins.WithLabelValues("limited")); n != 2 {
		t.Errorf("logins{limited} = %v", n)
	}
}

func TestCrossSiteSignInIsRefused(t *testing.T) {
	r := newRig(t)
	b := r.browser()
	req, _ := http.NewRequest(http.MethodPost, b.base+"/login", strings.NewReader("username=insp&password=insp-password-1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Fatalf("cross-site sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("cross-site sign-in set %v", resp.Cookies())
	}
}

func TestStateChangesNeedTheCSRFToken(t *testing.T) {
	r := newRig(t)
	id := r.raise("uncovered_load", 0, r.clk.Now().Add(-time.Minute), "warning")
	b := r.browser().signIn("insp")
	path := "/console/api/alerts/" + url.PathEscape(id) + "/ack"
	for _, token := range []string{"", "not-the-token"} {
		if code, _ := b.post(path, map[string]string{"note": "x"}, token); code != http.StatusForbidden {
			t.Fatalf("ack with token %q: %d, want 403", token, code)
		}
	}
	if a, _ := r.mg.Get(id); a.State != "firing" {
		t.Fatalf("a refused ack changed the alert: %s", a.State)
	}
	// Another session's token is no good either.
	other := r.browser().signIn("admin")
	if code, _ := b.post(path, map[string]string{}, other.csrf); code != http.StatusForbidden {
		t.Fatalf("ack with another session's token: %d", code)
	}
	if code, out := b.post(path, map[string]string{"note": "on my way"}, b.csrf); code != http.StatusOK {
		t.Fatalf("ack: %d %v", code, out)
	}
	if a, _ := r.mg.Get(id); a.State != "acknowledged" || a.AckedBy != "insp" { // no display name: the login name
		t.Fatalf("after ack: %s by %q", a.State, a.AckedBy)
	}
	// Signing out ends the session, and its live stream.
	live := b.stream()
	if code, _ := b.post("/logout", nil, b.csrf); code != http.StatusOK && code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := b.get("/console/api/me"); code != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d", code)
	}
	live.waitClosed(t)
}

func TestAlertQueueActions(t *testing.T) {
	r := newRig(t)
	warn := r.raise("uncovered_load", 0, r.clk.Now().Add(-2*time.Minute), "warning")
	crit := r.raise("illegal_dumping", 2, r.clk.Now().Add(-5*time.Minute), "critical")
	b := r.browser().signIn("insp")
	var list struct {
		Total  int            `json:"total"`
		Alerts []alertSummary `json:"alerts"`
	}
	b.getJSON("/console/api/alerts?kind=truck", &list)
	if list.Total != 2 || list.Alerts[0].ID != crit || list.Alerts[1].ID != warn {
		t.Fatalf("queue order: %+v", list)
	}
	// Nearest first when the officer shares a position.
	b.getJSON("/console/api/alerts?near=36.70,119.16", &list)
	if list.Alerts[0].Distance == nil {
		t.Fatalf("near: no distance in %+v", list.Alerts[0])
	}
	p := "/console/api/alerts/" + url.PathEscape(warn)
	if code, out := b.post(p+"/resolve", map[string]string{"note": " "}, b.csrf); code != http.StatusBadRequest {
		t.Fatalf("resolve without a note: %d %v", code, out)
	}
	if code, _ := b.post(p+"/notes", map[string]string{"text": "driver stopped at 宝通街"}, b.csrf); code != http.StatusOK {
		t.Fatalf("note: %d", code)
	}
	if code, out := b.post(p+"/outcome", map[string]string{"outcome": "fined", "note": "罚款 200 元"}, b.csrf); code != http.StatusOK {
		t.Fatalf("outcome: %d %v", code, out)
	}
	if code, _ := b.post(p+"/outcome", map[string]string{"outcome": "jailed"}, b.csrf); code != http.StatusBadRequest {
		t.Fatalf("bad outcome: %d", code)
	}
	code, out := b.post(p+"/resolve", map[string]string{"note": "cover closed on the spot"}, b.csrf)
	if code != http.StatusOK {
		t.Fatalf("resolve: %d %v", code, out)
	}
	if code, _ := b.post(p+"/ack", map[string]string{}, b.csrf); code != http.StatusConflict {
		t.Fatalf("ack of a resolved alert: %d, want 409", code)
	}
	var detail struct {
		Alert   alertSummary `json:"alert"`
		History []struct {
			Kind string `json:"kind"`
			By   string `json:"by"`
		} `json:"history"`
		Notes []struct{ Text string } `json:"notes"`
	}
	b.getJSON(p, &detail)
	kinds := []string{}
	for _, h := range detail.History {
		kinds = append(kinds, h.Kind)
	}
	joined := strings.Join(kinds, ",")
	for _, want := range []string{"fired", "note", "outcome", "resolved"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history %s lacks %s", joined, want)
		}
	}
	if detail.Alert.State != "resolved" || detail.Alert.Outcome != "fined" || len(detail.Notes) != 3 {
		t.Errorf("after the actions: %+v, %d notes", detail.Alert, len(detail.Notes))
	}
	// Duty officers do not see truck alerts at all.
	duty := r.browser().signIn("duty")
	if code, _, _ := duty.get(p); code != http.StatusNotFound {
		t.Errorf("duty GET truck alert: %d, want 404", code)
	}
}

// TestCompanyIsolation: a compliance manager of C01 never learns anything
// of C02's trucks, whichever door it knocks on.
func TestCompanyIsolation(t *testing.T) {
	r := newRig(t)
	now := r.clk.Now()
	plateA, devA := r.truck(0) // C01
	plateB, devB := r.truck(1) // C02
	r.fix(devA, now, 36.70, 119.10, 30)
	r.fix(devB, now, 36.71, 119.11, 30)
	idA := r.raise("uncovered_load", 0, now.Add(-time.Minute), "warning")
	idB := r.raise("uncovered_load", 1, now.Add(-time.Minute), "warning")
	c01 := r.browser().signIn("c01")
	live := c01.stream()

	var trucks struct{ Trucks []truckView }
	c01.getJSON("/console/api/trucks", &trucks)
	if len(trucks.Trucks) == 0 {
		t.Fatal("company user sees no trucks")
	}
	for _, tv := range trucks.Trucks {
		if tv.Company != "C01" {
			t.Fatalf("company user sees %s of %s", tv.Plate, tv.Company)
		}
	}
	if code, _, _ := c01.get("/console/api/trucks/" + url.PathEscape(plateA)); code != http.StatusOK {
		t.Fatalf("own truck: %d", code)
	}
	b := "/console/api/alerts/" + url.PathEscape(idB)
	for _, p := range []string{"/console/api/trucks/" + url.PathEscape(plateB), b, "/console/api/evidence/" + url.PathEscape(idB),
		"/console/api/evidence/" + url.PathEscape(idB) + "/bundle"} {
		if code, _, _ := c01.get(p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	for _, action := range []string{"/ack", "/notes", "/resolve", "/outcome"} {
		if code, _ := c01.post(b+action, map[string]string{"note": "x", "text": "x", "outcome": "warned"}, c01.csrf); code != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", action, code)
		}
	}
	if a, _ := r.mg.Get(idB); a.State != "firing" || len(a.Notes) != 0 {
		t.Fatalf("C02's alert changed: %s, %d notes", a.State, len(a.Notes))
	}
	var list struct{ Alerts []alertSummary }
	c01.getJSON("/console/api/alerts?state=firing", &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ID != idA {
		t.Fatalf("company alert list: %+v", list.Alerts)
	}
	for _, p := range []string{"/console/api/report?company=C02", "/console/api/report.csv?company=C02"} {
		if code, _, _ := c01.get(p); code != http.StatusForbidden {
			t.Errorf("GET %s: %d, want 403", p, code)
		}
	}
	var rep report
	c01.getJSON("/console/api/report", &rep)
	for _, rt := range rep.Trucks {
		if rt.Company != "C01" {
			t.Fatalf("company report lists %s of %s", rt.Plate, rt.Company)
		}
	}
	var city struct {
		Companies []map[string]string `json:"companies"`
		Routes    fc                  `json:"routes"`
	}
	c01.getJSON("/console/api/city", &city)
	if len(city.Companies) != 1 || city.Companies[0]["id"] != "C01" {
		t.Errorf("company city: %v", city.Companies)
	}
	// The stream: C01's truck moves and C02's too; only C01's is told, and
	// only C01's alert change.
	r.fix(devA, now.Add(time.Second), 36.7001, 119.1001, 30)
	r.fix(devB, now.Add(time.Second), 36.7101, 119.1101, 30)
	r.flush <- now
	ev := live.next(t, "trucks")
	if !strings.Contains(ev, plateA) || strings.Contains(ev, plateB) {
		t.Fatalf("company stream: %s", ev)
	}
	insp := r.browser().signIn("insp")
	insp.post(b+"/notes", map[string]string{"text": "B's note"}, insp.csrf)
	insp.post("/console/api/alerts/"+url.PathEscape(idA)+"/notes", map[string]string{"text": "A's note"}, insp.csrf)
	got := live.next(t, "alert")
	if !strings.Contains(got, plateA) || strings.Contains(got, plateB) {
		t.Fatalf("company stream's alert: %s", got)
	}
}

func TestStreamSendsChangedTrucksCompactly(t *testing.T) {
	r := newRig(t)
	now := r.clk.Now()
	plate, dev := r.truck(3)
	b := r.browser().signIn("insp")
	live := b.stream()
	r.fix(dev, now, 36.70, 119.10, 25)
	r.fix(dev, now.Add(time.Second), 36.7002, 119.1003, 26) // coalesced into one entry
	r.flush <- now
	ev := live.next(t, "trucks")
	var got struct{ T [][]any }
	if err := json.Unmarshal([]byte(ev), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.T) != 1 || got.T[0][0] != plate || got.T[0][1].(float64) != 36.7002 || got.T[0][5] != "empty" {
		t.Fatalf("trucks event: %s", ev)
	}
	// Loaded with the cover open: its colour changes.
	r.sensors(dev, now.Add(2*time.Second), telemetry.CoverOpen, telemetry.BodyDown, 18000)
	r.flush <- now
	if ev := live.next(t, "trucks"); !strings.Contains(ev, `"cover_open"`) {
		t.Fatalf("cover open: %s", ev)
	}
	// An alert makes it alerting, and its summary is streamed.
	id := r.raise("uncovered_load", 3, now, "warning")
	if ev := live.next(t, "alert"); !strings.Contains(ev, `"id":"`+id+`"`) {
		t.Fatalf("alert event: %s", ev)
	}
	r.flush <- now
	if ev := live.next(t, "trucks"); !strings.Contains(ev, `"alerting"`) {
		t.Fatalf("alerting: %s", ev)
	}
	// Nothing changed: nothing sent at the next flush, the one after sends
	// the new fix only.
	r.flush <- now
	r.fix(dev, now.Add(3*time.Second), 36.7004, 119.1006, 26)
	r.flush <- now
	if ev := live.next(t, "trucks"); !strings.Contains(ev, "36.700400") {
		t.Fatalf("next move: %s", ev)
	}
}

func TestEvidencePacketDigestIsTheDownload(t *testing.T) {
	r := newRig(t)
	start := r.clk.Now().Add(-20 * time.Minute)
	_, dev := r.truck(0)
	for i := range 40 { // a fix every 30 s from 15 min before the start
		ts := start.Add(-15*time.Minute + time.Duration(i)*30*time.Second)
		r.fix(dev, ts, 36.70+float64(i)*1e-4, 119.10, 30)
		r.sensors(dev, ts, telemetry.CoverOpen, telemetry.BodyDown, 18000)
	}
	id := r.raise("uncovered_load", 0, start, "warning")
	b := r.browser().signIn("insp")
	var ev struct {
		SHA256 string          `json:"sha256"`
		URL    string          `json:"url"`
		Final  bool            `json:"final"`
		Packet json.RawMessage `json:"packet"`
	}
	if code := b.getJSON("/console/api/evidence/"+url.PathEscape(id), &ev); code != http.StatusOK {
		t.Fatalf("evidence: %d", code)
	}
	if ev.Final {
		t.Fatal("a packet of an offence still going on is final")
	}
	// Asked again and again while the window is open: the same packet
	// within provisionalReuse, then one new packet replacing it, never a
	// pile of them on disk.
	first := ev.SHA256
	for range 5 {
		b.getJSON("/console/api/evidence/"+url.PathEscape(id), &ev)
	}
	if ev.SHA256 != first {
		t.Fatalf("provisional packet rebuilt within %s", provisionalReuse)
	}
	r.clk.Add(provisionalReuse)
	b.getJSON("/console/api/evidence/"+url.PathEscape(id), &ev)
	if ev.SHA256 == first {
		t.Fatal("provisional packet not rebuilt after its reuse time")
	}
	if packets, _ := filepath.Glob(filepath.Join(r.srv.o.DataDir, "evidence", "*.json")); len(packets) != 1 {
		t.Fatalf("%d packets on disk, want the latest provisional only", len(packets))
	}
	code, body, h := b.get(ev.URL)
	sum := sha256.Sum256(body)
	if code != http.StatusOK || hex.EncodeToString(sum[:]) != ev.SHA256 || h.Get("X-Content-SHA256") != ev.SHA256 {
		t.Fatalf("bundle: %d, digest %x, page says %s", code, sum, ev.SHA256)
	}
	var p packet
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	// The window: 10 min before the start up to now (still going on): the
	// fixes from start-10m on, not the 10 before.
	fixes := 0
	for _, f := range p.Track.Features {
		if f.Geometry.Type == "Point" && f.Properties["speed_kmh"] != nil {
			fixes++
		}
	}
	if p.Format != evidenceFormat || fixes != 30 || len(p.Timeline) != 30 || len(p.Raw) != 60 ||
		p.Rule.Thresholds["dwell_s"] != 30.0 || p.Rule.Measured["cover"] != "open" || p.Truck["company"] != "C01" {
		t.Fatalf("packet: format %s, %d fixes, %d timeline, %d raw, rule %+v", p.Format, fixes, len(p.Timeline), len(p.Raw), p.Rule)
	}
	// Once the offence has ended and 10 min more have passed, the packet is
	// final and the same bytes are served from then on.
	r.clear(id, 0, r.clk.Now().Add(-5*time.Minute))
	r.clk.Add(7 * time.Minute)
	b.getJSON("/console/api/evidence/"+url.PathEscape(id), &ev)
	if !ev.Final {
		t.Fatal("packet not final after its window")
	}
	first = ev.SHA256
	r.clk.Add(time.Hour)
	b.getJSON("/console/api/evidence/"+url.PathEscape(id), &ev)
	if ev.SHA256 != first {
		t.Fatalf("final packet changed: %s then %s", first, ev.SHA256)
	}
	code, body, _ = b.get("/console/api/evidence/" + url.PathEscape(id) + "/bundle")
	sum = sha256.Sum256(body)
	if code != http.StatusOK || hex.EncodeToString(sum[:]) != first {
		t.Fatalf("final bundle: %d %x", code, sum)
	}
	// Another alert's digest is not served under this alert.
	other := r.raise("off_route", 2, r.clk.Now().Add(-time.Minute), "warning")
	if code, _, _ := b.get("/console/api/evidence/" + url.PathEscape(other) + "/bundle?sha256=" + first); code != http.StatusNotFound {
		t.Fatalf("digest of another alert: %d", code)
	}
}

func TestNewPasswordEndsTheSessions(t *testing.T) {
	r := newRig(t)
	c01 := r.browser().signIn("c01")
	insp := r.browser().signIn("insp")
	c01Live, inspLive := c01.stream(), insp.stream()
	users := *r.srv.users.Load()
	users.Users = append([]config.User(nil), users.Users...)
	for i := range users.Users {
		if users.Users[i].Name == "c01" {
			if err := users.Users[i].SetPassword("a-new-password-2", 4); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.srv.SetUsers(&users)
	if code, _, _ := c01.get("/console/api/me"); code != http.StatusUnauthorized {
		t.Fatalf("session after a new password: %d", code)
	}
	c01Live.waitClosed(t) // its live stream ends too
	if !inspLive.open() {
		t.Fatal("another user's stream was closed")
	}
	if code, _, _ := insp.get("/console/api/me"); code != http.StatusOK {
		t.Fatalf("another user's session: %d", code)
	}
	if code := r.browser().login("c01", "a-new-password-2"); code != http.StatusOK {
		t.Fatalf("sign in with the new password: %d", code)
	}
}

// TestSignInLimitBehindAProxy: behind a trusted proxy the limit counts
// browsers by X-Forwarded-For; from anyone else the header is ignored.
func TestSignInLimitBehindAProxy(t *testing.T) {
	r := newRig(t)
	login := func(xff, user, pw string) int {
		req, _ := http.NewRequest(http.MethodPost, r.http.URL+"/login", strings.NewReader(url.Values{"username": {user}, "password": {pw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Not trusted: a forged header changes nothing, 20 guesses lock the
	// (loopback) address whatever it says.
	// (Wrong passwords of the five known users, four each: no name is
	// locked, and no slow dummy hash is computed.)
	for i := range 20 {
		login(fmt.Sprintf("203.0.113.%d", i), testUsers[i%5].name, "wrong")
	}
	if code := login("198.51.100.7", "duty", "duty-password-1"); code != http.StatusTooManyRequests {
		t.Fatalf("forged X-Forwarded-For got past the address lock: %d", code)
	}
	// Trusted: the browsers behind the proxy are told apart.
	r = newRig(t)
	r.srv.o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for i := range 20 {
		login("203.0.113.9", testUsers[i%5].name, "wrong")
	}
	if code := login("203.0.113.9", "duty", "duty-password-1"); code != http.StatusTooManyRequests {
		t.Fatalf("the guessing browser: %d, want 429", code)
	}
	if code := login("198.51.100.7", "duty", "duty-password-1"); code != http.StatusOK {
		t.Fatalf("another browser behind the same proxy: %d, want 200", code)
	}
	// The client cannot pick its address by adding hops of its own: the
	// proxy appends the real one last.
	if code := login("198.51.100.8, 203.0.113.9", "duty", "duty-password-1"); code != http.StatusTooManyRequests {
		t.Fatalf("a forged first hop: %d, want 429", code)
	}
}
