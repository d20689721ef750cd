package alerting

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
)

// Filter selects alerts. Empty fields match everything; Since and Until
// select alerts active at some time in [Since, Until] (an open alert is
// active until now).
type Filter struct {
	State    State
	Rule     string // a rule id; "zone_violation" matches every zone
	Subject  string // plate or gauge device
	Company  string
	District string
	Since    time.Time
	Until    time.Time
	Limit    int // default 100, at most 1000
}

func (f *Filter) match(a *Alert, now time.Time) bool {
	end := now
	if a.State == StateResolved {
		end = a.ResolvedAt
	}
	return (f.State == "" || a.State == f.State) &&
		(f.Rule == "" || a.Rule == f.Rule || ruleTemplate(a.Rule) == f.Rule) &&
		(f.Subject == "" || a.Subject.ID == f.Subject) &&
		(f.Company == "" || a.Subject.Company == f.Company) &&
		(f.District == "" || a.Subject.District == f.District) &&
		(f.Since.IsZero() || !end.Before(f.Since)) &&
		(f.Until.IsZero() || !a.OpenedAt.After(f.Until))
}

// List returns the alerts f selects, newest opened first, and how many
// matched in all.
func (mg *Manager) List(f Filter) ([]*Alert, int) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	mg.mu.Lock()
	now := mg.now()
	var hits []*Alert
	for _, a := range mg.alerts {
		if f.match(a, now) {
			hits = append(hits, a)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].OpenedAt.Equal(hits[j].OpenedAt) {
			return hits[i].OpenedAt.After(hits[j].OpenedAt)
		}
		return hits[i].ID > hits[j].ID
	})
	total := len(hits)
	out := make([]*Alert, 0, min(total, f.Limit))
	for _, a := range hits[:min(total, f.Limit)] {
		out = append(out, a.clone())
	}
	mg.mu.Unlock()
	return out, total
}

// Select returns every alert f selects, without a limit and in no order,
// as summaries: without history, notifications or CAP documents (reports
// count over all of them; Get has the rest).
func (mg *Manager) Select(f Filter) []*Alert {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	now := mg.now()
	var out []*Alert
	for _, a := range mg.alerts {
		if f.match(a, now) {
			s := *a
			s.History, s.Notifications, s.CAP = nil, nil, nil
			s.Details = maps.Clone(a.Details)
			s.Sources = slices.Clone(a.Sources)
			s.Notes = slices.Clone(a.Notes)
			out = append(out, &s)
		}
	}
	return out
}

// Get returns one alert with its history, or ErrNotFound.
func (mg *Manager) Get(id string) (*Alert, error) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	a := mg.alerts[id]
	if a == nil {
		return nil, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	return a.clone(), nil
}

// caller is who makes an API request.
type caller struct {
	name    string
	company string // "" for every alert
}

// Handler serves the alert API and the CAP feed:
//
//	GET  /api/alerts                      list; filters state, rule, subject, company, district, since, until (RFC 3339), limit
//	GET  /api/alerts/{id}                 one alert with its history and notifications
//	GET  /api/alerts/{id}/notifications   the notifications sent, or being sent, for it
//	POST /api/alerts/{id}/ack             {"by", "note"}
//	POST /api/alerts/{id}/resolve         {"by", "note"}; note required
//	POST /api/alerts/{id}/notes           {"by", "text"}
//	GET  /cap/feed.xml                    Atom feed of the CAP warnings
//	GET  /cap/{identifier}.xml            one CAP 1.2 document
//
// An alert id holds slashes: escape it as one path segment (%2F). With API
// users configured, /api requests need "Authorization: Bearer {token}"; the
// user's name is recorded as who acted, and a user bound to a company sees
// and acts on that company's trucks only. The CAP documents are public.
func (mg *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/alerts", mg.auth(mg.handleList))
	mux.HandleFunc("GET /api/alerts/{id}", mg.auth(mg.handleGet))
	mux.HandleFunc("GET /api/alerts/{id}/notifications", mg.auth(mg.handleNotifications))
	mux.HandleFunc("POST /api/alerts/{id}/ack", mg.auth(mg.handleAction("ack")))
	mux.HandleFunc("POST /api/alerts/{id}/resolve", mg.auth(mg.handleAction("resolve")))
	mux.HandleFunc("POST /api/alerts/{id}/notes", mg.auth(mg.handleAction("note")))
	mux.HandleFunc("GET /cap/feed.xml", mg.handleFeed)
	mux.HandleFunc("GET /cap/{doc}", mg.handleCAP)
	return mux
}

func (mg *Manager) auth(h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mg.mu.Lock()
		users := mg.cfg.Users
		mg.mu.Unlock()
		if len(users) == 0 {
			h(w, r, caller{})
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok {
			for _, u := range users {
				if subtle.ConstantTimeCompare([]byte(token), []byte(u.Token)) == 1 {
					h(w, r, caller{name: u.Name, company: u.Company})
					return
				}
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="urbanwatch"`)
		apiError(w, http.StatusUnauthorized, "a valid bearer token is required")
	}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// summary is an alert in a list: no history, notifications or documents.
func summary(a *Alert) *Alert {
	s := *a
	s.History, s.Notifications, s.CAP = nil, nil, nil
	return &s
}

// view is one alert as the API shows it: CAP documents as links.
func view(a *Alert) any {
	type capLink struct {
		Identifier string    `json:"identifier"`
		MsgType    string    `json:"msg_type"`
		Sent       time.Time `json:"sent"`
		Headline   string    `json:"headline"`
		URL        string    `json:"url"`
	}
	links := make([]capLink, 0, len(a.CAP))
	for _, c := range a.CAP {
		links = append(links, capLink{c.Identifier, c.MsgType, c.Sent, c.Headline, capPath(c.Identifier)})
	}
	b := *a
	b.CAP = nil
	return struct {
		*Alert
		CAP []capLink `json:"cap"`
	}{&b, links}
}

func parseFilter(q url.Values) (Filter, error) {
	f := Filter{State: State(q.Get("state")), Rule: q.Get("rule"), Subject: q.Get("subject"),
		Company: q.Get("company"), District: q.Get("district")}
	switch f.State {
	case "", StateFiring, StateAcknowledged, StateResolved:
	default:
		return f, fmt.Errorf("state %q: want firing, acknowledged or resolved", f.State)
	}
	for _, t := range []struct {
		key string
		to  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.key); v != "" {
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, fmt.Errorf("%s %q: want RFC 3339, e.g. 2026-11-24T20:00:00+08:00", t.key, v)
			}
			*t.to = ts
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit %q: want a positive number", v)
		}
		f.Limit = n
	}
	return f, nil
}

func (mg *Manager) handleList(w http.ResponseWriter, r *http.Request, c caller) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if c.company != "" {
		if f.Company != "" && f.Company != c.company {
			apiError(w, http.StatusForbidden, "you may see company "+c.company+" only")
			return
		}
		f.Company = c.company
	}
	alerts, total := mg.List(f)
	out := make([]*Alert, len(alerts))
	for i, a := range alerts {
		out[i] = summary(a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "alerts": out})
}

// visible fetches the alert of the request's {id} if the caller may see it.
func (mg *Manager) visible(w http.ResponseWriter, r *http.Request, c caller) *Alert {
	a, err := mg.Get(r.PathValue("id"))
	if err == nil && c.company != "" && a.Subject.Company != c.company {
		err = ErrNotFound // not theirs: as if it did not exist
	}
	if err != nil {
		apiError(w, http.StatusNotFound, "no alert "+r.PathValue("id"))
		return nil
	}
	return a
}

func (mg *Manager) handleGet(w http.ResponseWriter, r *http.Request, c caller) {
	if a := mg.visible(w, r, c); a != nil {
		writeJSON(w, http.StatusOK, view(a))
	}
}

func (mg *Manager) handleNotifications(w http.ResponseWriter, r *http.Request, c caller) {
	if a := mg.visible(w, r, c); a != nil {
		ns := slices.DeleteFunc(a.Notifications, func(n Notification) bool { return n.Channel != ChannelSMS })
		writeJSON(w, http.StatusOK, map[string]any{"alert": a.ID, "notifications": ns})
	}
}

func (mg *Manager) handleAction(action string) func(http.ResponseWriter, *http.Request, caller) {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if mg.visible(w, r, c) == nil {
			return
		}
		var body struct {
			By   string `json:"by"`
			Note string `json:"note"`
			Text string `json:"text"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
			apiError(w, http.StatusBadRequest, "body: want JSON {\"by\", \"note\"}: "+err.Error())
			return
		}
		by := body.By
		if c.name != "" {
			by = c.name // an authenticated caller is who they are
		}
		if strings.TrimSpace(by) == "" {
			apiError(w, http.StatusBadRequest, "by: say who you are")
			return
		}
		id := r.PathValue("id")
		var a *Alert
		var err error
		switch action {
		case "ack":
			a, err = mg.Acknowledge(id, by, body.Note)
		case "resolve":
			if strings.TrimSpace(body.Note) == "" {
				apiError(w, http.StatusBadRequest, "note: say why it is resolved")
				return
			}
			a, err = mg.Resolve(id, by, body.Note)
		case "note":
			text := body.Text
			if text == "" {
				text = body.Note
			}
			if strings.TrimSpace(text) == "" {
				apiError(w, http.StatusBadRequest, "text: the note is empty")
				return
			}
			a, err = mg.AddNote(id, by, text)
		}
		switch {
		case errors.Is(err, ErrConflict):
			apiError(w, http.StatusConflict, err.Error())
		case errors.Is(err, ErrNotFound):
			apiError(w, http.StatusNotFound, err.Error())
		case err != nil:
			apiError(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, view(a))
		}
	}
}

// feedSize is how many CAP messages the feed lists.
const feedSize = 200

func (mg *Manager) handleFeed(w http.ResponseWriter, r *http.Request) {
	msgs := mg.CAPMessages(feedSize)
	entries := make([]cap.Entry, 0, len(msgs))
	updated := mg.now()
	for i, m := range msgs {
		doc, err := cap.Parse([]byte(m.XML))
		if err != nil {
			continue
		}
		if i == 0 {
			updated = m.Sent
		}
		entries = append(entries, cap.Entry{Message: doc, URL: absURL(r, capPath(m.Identifier))})
	}
	mg.mu.Lock()
	title := mg.cfg.CAP.SenderName
	mg.mu.Unlock()
	body, err := cap.Feed(strings.TrimSpace(title+" 暴雨与内涝预警"), absURL(r, "/cap/feed.xml"), updated, entries)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Write(body)
}

func (mg *Manager) handleCAP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("doc"), ".xml")
	if !ok {
		http.NotFound(w, r)
		return
	}
	m, found := mg.CAPDocument(id)
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Write([]byte(m.XML))
}

// absURL makes path absolute for the host the request came to.
func absURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}
