package cap_test

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// atomFeed is the feed as a consumer reads it.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Authors []string    `xml:"author>name"`
	Entries []atomEntry `xml:"entry"`
}

type atomEntry struct {
	Lang     string     `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	ID       string     `xml:"id"`
	Title    string     `xml:"title"`
	Updated  string     `xml:"updated"`
	Authors  []string   `xml:"author>name"`
	Summary  string     `xml:"summary"`
	Links    []atomLink `xml:"link"`
	Category []struct {
		Term string `xml:"term,attr"`
	} `xml:"category"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
	Href string `xml:"href,attr"`
}

func TestFeed(t *testing.T) {
	t1, t2, t3 := t0.Add(40*time.Minute), t0.Add(50*time.Minute), t0.Add(3*time.Hour)
	raised := compose(t, rainAlert(telemetry.AlertFiring, 1, "warning", t0, map[string]any{"level": "yellow", "yellow_mm": 50.8, "threshold_mm": 50, "window_h": 6}), nil, 1, cap.Area{})
	water := compose(t, waterAlert(telemetry.AlertFiring, 1, "warning", t1, map[string]any{"level": "warning", "depth_cm": 15.5, "warn_cm": 15, "close_cm": 25}), nil, 2, cap.Area{})
	upgraded := compose(t, rainAlert(telemetry.AlertFiring, 2, "major", t2, map[string]any{"level": "orange", "previous_level": "yellow", "change": "upgraded", "orange_mm": 50.3}),
		[]cap.Ref{cap.RefTo(raised)}, 3, cap.Area{})
	cleared := compose(t, rainAlert(telemetry.AlertResolved, 3, "major", t3, map[string]any{"level": "", "previous_level": "orange", "change": "cleared"}),
		[]cap.Ref{cap.RefTo(raised), cap.RefTo(upgraded)}, 4, cap.Area{})
	byAge := []*cap.Message{cleared, upgraded, water, raised} // newest first
	for _, m := range byAge {
		render(t, m)
	}
	url := func(m *cap.Message) string { return "https://uw.example.cn/cap/" + m.Identifier + ".xml" }
	entries := []cap.Entry{{raised, url(raised)}, {cleared, url(cleared)}, {water, url(water)}, {upgraded, url(upgraded)}}

	const self = "https://uw.example.cn/cap/feed.xml"
	doc, err := cap.Feed("潍坊市城市管理局 暴雨内涝预警", self, time.Time{}, entries)
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	lint(t, "feed.xml", doc)

	var f atomFeed
	if err := xml.Unmarshal(doc, &f); err != nil {
		t.Fatalf("parse feed: %v\n%s", err, doc)
	}
	equal(t, "feed id", f.ID, self)
	equal(t, "feed title", f.Title, "潍坊市城市管理局 暴雨内涝预警")
	equal(t, "feed updated (newest entry)", f.Updated, "2026-07-25T00:31:05+08:00")
	if len(f.Links) != 1 || f.Links[0] != (atomLink{Rel: "self", Type: "application/atom+xml", Href: self}) {
		t.Errorf("feed links %+v, want one self link to %s", f.Links, self)
	}
	if len(f.Entries) != len(byAge) {
		t.Fatalf("%d entries, want %d", len(f.Entries), len(byAge))
	}
	ids := map[string]bool{}
	var prev time.Time
	for i, e := range f.Entries {
		m := byAge[i]
		in := m.Info[0]
		equal(t, "entry id", e.ID, "urn:oasis:names:tc:emergency:cap:1.2:urbanwatch@370700:"+m.Identifier)
		if ids[e.ID] {
			t.Errorf("entry id %s twice", e.ID)
		}
		ids[e.ID] = true
		equal(t, "entry title", e.Title, in.Headline)
		equal(t, "entry summary", e.Summary, in.Description)
		equal(t, "entry lang", e.Lang, "zh-CN")
		equal(t, "entry author", strings.Join(e.Authors, ","), "潍坊市城市管理局")
		updated, err := time.Parse(time.RFC3339, e.Updated)
		if err != nil {
			t.Fatalf("entry %d updated: %v", i+1, err)
		}
		if !updated.Equal(m.Sent) {
			t.Errorf("entry %d updated %v, want sent %v", i+1, updated, m.Sent)
		}
		if i > 0 && updated.After(prev) {
			t.Errorf("entry %d (%v) is newer than entry %d (%v)", i+1, updated, i, prev)
		}
		prev = updated
		if len(e.Links) != 1 || e.Links[0] != (atomLink{Rel: "alternate", Type: "application/cap+xml", Href: url(m)}) {
			t.Errorf("entry %d links %+v, want the alternate CAP link %s", i+1, e.Links, url(m))
		}
		if len(e.Category) != 1 || e.Category[0].Term != m.MsgType {
			t.Errorf("entry %d categories %+v, want %s", i+1, e.Category, m.MsgType)
		}
	}
	if !strings.HasPrefix(f.Entries[0].Title, "奎文区东风街雨量站解除暴雨橙色预警") {
		t.Errorf("first entry %q, want the newest (the Cancel)", f.Entries[0].Title)
	}

	// An explicit updated time is kept; an empty feed still has an author.
	at := time.Date(2026, 7, 24, 20, 0, 0, 0, time.FixedZone("", 8*3600))
	doc, err = cap.Feed("空", self, at, nil)
	if err != nil {
		t.Fatalf("empty Feed: %v", err)
	}
	lint(t, "empty.xml", doc)
	f = atomFeed{}
	if err := xml.Unmarshal(doc, &f); err != nil {
		t.Fatal(err)
	}
	equal(t, "empty feed updated", f.Updated, "2026-07-24T20:00:00+08:00")
	equal(t, "empty feed entries", len(f.Entries), 0)
	equal(t, "empty feed author", strings.Join(f.Authors, ","), "空")

	for name, bad := range map[string][]cap.Entry{
		"duplicate": {{raised, url(raised)}, {raised, url(raised) + "?again"}},
		"no URL":    {{raised, ""}},
		"nil":       {{nil, "https://x"}},
	} {
		if _, err := cap.Feed("t", self, at, bad); err == nil {
			t.Errorf("Feed accepted %s entries", name)
		}
	}
	if _, err := cap.Feed("t", self, time.Time{}, nil); err == nil {
		t.Error("Feed accepted no updated time and no entries")
	}
}
