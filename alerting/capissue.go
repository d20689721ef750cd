package alerting

import (
	"net/url"
	"sort"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// CAPTopicPrefix starts the MQTT topic of every CAP document:
// urbanwatch/cap/{rule}/{subject}, retained, so a new subscriber gets the
// warning in force at each point (or its Cancel).
const CAPTopicPrefix = "urbanwatch/cap/"

func capTopic(a *Alert) string { return CAPTopicPrefix + a.Rule + "/" + a.Subject.ID }

// issueCAP composes the next CAP message of a flood warning (Alert, then
// Update, then Cancel once resolved), stores it with the alert and queues
// its publication.
func (mg *Manager) issueCAP(a *Alert, now time.Time) {
	if !floodWarning(ruleTemplate(a.Rule)) {
		return
	}
	var prev []cap.Ref
	for _, c := range a.CAP {
		if c.MsgType == "Cancel" {
			prev = nil // a reopened warning starts a new chain
			continue
		}
		prev = append(prev, cap.Ref{Sender: mg.profile().Sender, Identifier: c.Identifier, Sent: c.Sent})
	}
	state := telemetry.AlertFiring
	if a.State == StateResolved {
		state = telemetry.AlertResolved
	}
	ts := a.UpdatedAt
	if state == telemetry.AlertResolved && a.ResolvedBy != "rules" {
		ts = now // lifted by a person
	}
	ev := &telemetry.Alert{ID: a.ID, Rule: a.Rule, State: state, Severity: a.Severity, Subject: a.Subject,
		StartedAt: a.StartedAt, TS: ts, Location: a.Location, Details: a.Details}
	mg.capSeq++
	msg, err := cap.Compose(mg.profile(), ev, prev, mg.capSeq, mg.capArea(a))
	var doc []byte
	if err == nil {
		doc, err = msg.XML()
	}
	if err != nil {
		a.record(now, Event{Kind: EventCAP, Text: "CAP message not issued: " + err.Error()})
		mg.log.Error().Err(err).Str("alert", a.ID).Msg("compose CAP message")
		return
	}
	headline := ""
	if len(msg.Info) > 0 {
		headline = msg.Info[0].Headline
	}
	a.CAP = append(a.CAP, CAPMessage{Identifier: msg.Identifier, Sent: msg.Sent, MsgType: msg.MsgType,
		Seq: mg.capSeq, Headline: headline, XML: string(doc)})
	a.record(now, Event{Kind: EventCAP, Text: msg.MsgType + " " + msg.Identifier + ": " + headline})
	n := Notification{ID: notificationID(a, len(a.Notifications)+1), Channel: ChannelCAP, Reason: ReasonCAP,
		State: NotifyPending, DecidedAt: now, CAP: msg.Identifier, Critical: a.Severity == "critical"}
	a.Notifications = append(a.Notifications, n)
	mg.outbox[n.ID] = a.ID
}

// profile is the CAP sender, from the settings and the city.
func (mg *Manager) profile() cap.Profile {
	p := cap.Profile{Sender: mg.cfg.CAP.Sender, SenderName: mg.cfg.CAP.SenderName, Status: mg.cfg.CAP.Status,
		Web: mg.cfg.CAP.Web, Location: mg.router.loc, RegionCode: "000000"}
	if mg.city != nil && mg.city.RegionCode != "" {
		p.RegionCode = mg.city.RegionCode
	}
	if p.Sender == "" {
		p.Sender = "urbanwatch@" + p.RegionCode
	}
	return p
}

// capArea is the district outline of a rainstorm (when the city has it) and
// the district's geocode; a waterlogging point gets the default circle.
func (mg *Manager) capArea(a *Alert) cap.Area {
	var area cap.Area
	if mg.city == nil || a.Subject.District == "" {
		return area
	}
	for _, d := range mg.city.Districts {
		if d.Name != a.Subject.District {
			continue
		}
		if d.Adcode != "" {
			area.Geocodes = append(area.Geocodes, cap.Geocode{Name: cap.GeocodeRegion, Value: d.Adcode})
		}
		if a.Rule != "rainstorm" {
			break
		}
		area.Desc = d.Name
		for _, poly := range d.Area {
			if len(poly) == 0 {
				continue
			}
			ring := make([]telemetry.Location, len(poly[0]))
			for i, p := range poly[0] {
				ring[i] = telemetry.Location{Lat: p[1], Lon: p[0]}
			}
			area.Polygons = append(area.Polygons, ring)
		}
		break
	}
	return area
}

// CAPEntry is one issued CAP message and the alert it belongs to.
type CAPEntry struct {
	AlertID string
	CAPMessage
}

// CAPMessages returns the CAP messages issued within the retention, newest
// first, at most limit (0 for all).
func (mg *Manager) CAPMessages(limit int) []CAPEntry {
	mg.mu.Lock()
	var out []CAPEntry
	for _, a := range mg.alerts {
		for _, c := range a.CAP {
			out = append(out, CAPEntry{AlertID: a.ID, CAPMessage: c})
		}
	}
	mg.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Sent.Equal(out[j].Sent) {
			return out[i].Sent.After(out[j].Sent)
		}
		return out[i].Seq > out[j].Seq
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// CAPDocument returns the document with identifier, or false.
func (mg *Manager) CAPDocument(identifier string) (CAPEntry, bool) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	for _, a := range mg.alerts {
		for _, c := range a.CAP {
			if c.Identifier == identifier {
				return CAPEntry{AlertID: a.ID, CAPMessage: c}, true
			}
		}
	}
	return CAPEntry{}, false
}

// capPath is where a CAP document is served.
func capPath(identifier string) string { return "/cap/" + url.PathEscape(identifier) + ".xml" }
