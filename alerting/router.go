package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// router decides who hears of an alert, from the alerting settings and the
// city's companies. It is immutable; a reload builds a new one.
type router struct {
	cfg       *config.Alerting
	loc       *time.Location
	companies map[string]*config.Company
	people    map[string]*config.Person
}

func newRouter(cfg *config.Alerting, city *config.City) *router {
	r := &router{cfg: cfg, loc: time.Local, companies: map[string]*config.Company{},
		people: map[string]*config.Person{}}
	if city != nil {
		if city.Location != nil {
			r.loc = city.Location
		}
		for i := range city.Companies {
			r.companies[city.Companies[i].ID] = &city.Companies[i]
		}
	}
	for i := range cfg.People {
		r.people[cfg.People[i].ID] = &cfg.People[i]
	}
	return r
}

// floodWarning reports whether a rule's alerts are public warnings.
func floodWarning(rule string) bool { return rule == "rainstorm" || rule == "waterlogging" }

// recipients returns who hears of a at now, one entry per phone number:
//   - a truck's alert: its company's compliance contacts, and the
//     inspection groups on duty for its district;
//   - a gauge's: the flood duty groups on duty for its district, and for
//     rainstorm and waterlogging also the public warning groups.
//
// Someone reached through a group on duty is marked OnDuty.
func (r *router) recipients(a *Alert, now time.Time) []Recipient {
	var out []Recipient
	seen := map[string]int{}
	add := func(rc Recipient) {
		if i, ok := seen[rc.Phone]; ok {
			if rc.OnDuty && !out[i].OnDuty {
				out[i] = rc
			}
			return
		}
		seen[rc.Phone] = len(out)
		out = append(out, rc)
	}
	groups := func(kind config.GroupKind, onDuty bool) {
		for i := range r.cfg.Groups {
			g := &r.cfg.Groups[i]
			if g.Kind != kind || !g.Covers(a.Subject.District) || !g.OnDuty(now, r.loc) {
				continue
			}
			for _, id := range g.Members {
				if p := r.people[id]; p != nil {
					add(Recipient{ID: p.ID, Name: p.Name, Phone: p.Phone, Lang: p.Lang, Via: "group:" + g.ID, OnDuty: onDuty})
				}
			}
		}
	}
	switch a.Subject.Kind {
	case telemetry.SubjectTruck:
		if c := r.companies[a.Subject.Company]; c != nil {
			for i, ct := range c.Contacts {
				add(Recipient{ID: fmt.Sprintf("company:%s:%d", c.ID, i+1), Name: ct.Name, Phone: ct.Phone,
					Lang: r.cfg.Defaults.Lang, Via: "company:" + c.ID})
			}
		}
		groups(config.GroupInspection, true)
	case telemetry.SubjectGauge:
		groups(config.GroupFloodDuty, true)
		if floodWarning(a.Rule) {
			groups(config.GroupPublic, false)
		}
	}
	return out
}

// escalation returns the members of the escalation groups of tier on duty
// for a's district at now, and the groups' names.
func (r *router) escalation(a *Alert, tier int, now time.Time) ([]Recipient, []string) {
	var out []Recipient
	var names []string
	seen := map[string]bool{}
	for i := range r.cfg.Groups {
		g := &r.cfg.Groups[i]
		if g.Kind != config.GroupEscalation || g.Tier != tier || !g.Covers(a.Subject.District) || !g.OnDuty(now, r.loc) {
			continue
		}
		name := g.Name
		if name == "" {
			name = g.ID
		}
		names = append(names, name)
		for _, id := range g.Members {
			p := r.people[id]
			if p == nil || seen[p.Phone] {
				continue
			}
			seen[p.Phone] = true
			out = append(out, Recipient{ID: p.ID, Name: p.Name, Phone: p.Phone, Lang: p.Lang, Via: "group:" + g.ID, OnDuty: true})
		}
	}
	return out, names
}

// hasTier reports whether any escalation group has tier.
func (r *router) hasTier(tier int) bool {
	for i := range r.cfg.Groups {
		if r.cfg.Groups[i].Kind == config.GroupEscalation && r.cfg.Groups[i].Tier == tier {
			return true
		}
	}
	return false
}

// settings returns a recipient's quiet hours (nil for none) and hourly cap.
func (r *router) settings(rc Recipient) (*config.Window, int) {
	if p := r.people[rc.ID]; p != nil {
		return p.Quiet, p.MaxPerHour
	}
	q, _ := config.ParseQuietHours(r.cfg.Defaults.QuietHours)
	return q, r.cfg.Defaults.MaxPerHour
}

// quietUntil returns when the quiet hours holding at now end, or the zero
// time if they do not hold. On-duty recipients have none.
func (r *router) quietUntil(rc Recipient, now time.Time) time.Time {
	if rc.OnDuty {
		return time.Time{}
	}
	w, _ := r.settings(rc)
	if w == nil {
		return time.Time{}
	}
	local := now.In(r.loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, r.loc)
	sec := int(local.Sub(midnight) / time.Second)
	if !w.Contains(sec) {
		return time.Time{}
	}
	end := midnight.Add(time.Duration(w.End) * time.Second)
	if w.End <= w.Start && sec >= w.Start { // crosses midnight, now before it
		end = time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, r.loc).Add(time.Duration(w.End) * time.Second)
	}
	return end
}

// describe lists recipients for a history entry.
func describe(rcs []Recipient) string {
	names := make([]string, len(rcs))
	for i, rc := range rcs {
		names[i] = rc.Name + " (" + rc.Via + ")"
	}
	return strings.Join(names, ", ")
}
