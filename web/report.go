package web

import (
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// reportRules are the truck rules the compliance report counts, in the
// order of its columns.
var reportRules = []string{"uncovered_load", "off_route", "illegal_dumping", "outside_permit_hours", "no_permit", "signal_lost",
	"zone_violation", "overload", "unwashed_exit", "spillage"}

// maxReportDays bounds one report's range.
const maxReportDays = 92

type reportTruck struct {
	Plate        string         `json:"plate"`
	Company      string         `json:"company"`
	CompanyName  string         `json:"company_name"`
	Trips        int            `json:"trips"`
	Violations   map[string]int `json:"violations"`
	Total        int            `json:"total"`
	UncoveredMin float64        `json:"uncovered_min"`
	Per100Trips  *float64       `json:"per_100_trips"`
}

type reportDay struct {
	Date       string         `json:"date"`
	Trips      int            `json:"trips"`
	Violations map[string]int `json:"violations"`
	Total      int            `json:"total"`
}

type report struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	Company  string           `json:"company"`
	Rules    []string         `json:"rules"`
	Trucks   []*reportTruck   `json:"trucks"`
	Days     []*reportDay     `json:"days"`
	Totals   *reportTruck     `json:"totals"`
	Outcomes map[string]int   `json:"outcomes"`
	Note     string           `json:"note"`
	Range    map[string]int64 `json:"range"`
}

// parseReport reads from, to and company, enforcing a company user's own
// company; it writes the error response itself.
func (s *Server) parseReport(w http.ResponseWriter, r *http.Request) (from, to time.Time, company string, ok bool) {
	id := identityOf(r)
	c := s.city.Load()
	q := r.URL.Query()
	company = q.Get("company")
	if id.Role == config.RoleCompany {
		if company != "" && company != id.Company {
			s.m.denied.WithLabelValues("scope").Inc()
			writeError(w, http.StatusForbidden, "you may see the report of your own company only")
			return
		}
		company = id.Company
	} else if company != "" && c.Company(company) == nil {
		writeError(w, http.StatusBadRequest, "company "+company+": not in the city file")
		return
	}
	today := s.now().In(c.Location)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, c.Location)
	from, to = today.AddDate(0, 0, -6), today
	for _, p := range []struct {
		key string
		to  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.key); v != "" {
			d, err := time.ParseInLocation(time.DateOnly, v, c.Location)
			if err != nil {
				writeError(w, http.StatusBadRequest, p.key+" "+v+": want YYYY-MM-DD")
				return
			}
			*p.to = d
		}
	}
	if to.Before(from) {
		writeError(w, http.StatusBadRequest, "to is before from")
		return
	}
	if to.Sub(from) >= maxReportDays*24*time.Hour { // to is inclusive: to−from+1 days
		writeError(w, http.StatusBadRequest, fmt.Sprintf("at most %d days in one report", maxReportDays))
		return
	}
	return from, to.AddDate(0, 0, 1), company, true // to is inclusive: up to its end
}

func (s *Server) buildReport(from, to time.Time, company string) (*report, error) {
	c := s.city.Load()
	rep := &report{From: from.Format(time.DateOnly), To: to.AddDate(0, 0, -1).Format(time.DateOnly), Company: company,
		Rules: reportRules, Outcomes: map[string]int{}, Range: map[string]int64{"from": from.Unix(), "to": to.Unix()},
		Note: "trips are counted from the loaded journeys the console recorded; alerts within the alert retention (90 days)"}
	byPlate := map[string]*reportTruck{}
	for _, t := range c.Trucks {
		if company != "" && t.Company != company {
			continue
		}
		rt := &reportTruck{Plate: t.Plate, Company: t.Company, Violations: map[string]int{}}
		if co := c.Company(t.Company); co != nil {
			rt.CompanyName = co.Name
		}
		byPlate[t.Plate] = rt
		rep.Trucks = append(rep.Trucks, rt)
	}
	days := map[string]*reportDay{}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		rd := &reportDay{Date: d.Format(time.DateOnly), Violations: map[string]int{}}
		days[rd.Date] = rd
		rep.Days = append(rep.Days, rd)
	}
	tot := &reportTruck{Plate: "", Company: company, Violations: map[string]int{}}
	rep.Totals = tot
	trips, err := s.trips.between(from, to, company)
	if err != nil {
		return nil, err
	}
	for _, tr := range trips {
		if rt := byPlate[tr.Plate]; rt != nil {
			rt.Trips++
			tot.Trips++
			if rd := days[tr.DepartedAt.In(c.Location).Format(time.DateOnly)]; rd != nil {
				rd.Trips++
			}
		}
	}
	now := s.now()
	// Counted by when the offence began; no Until, since Until filters by
	// when urbanwatch received an alert, which for a late upload or a long
	// dwell is after the range that holds its start.
	for _, a := range s.o.Alerts.Select(alerting.Filter{Company: company, Since: from}) {
		if a.Subject.Kind != telemetry.SubjectTruck || a.StartedAt.Before(from) || !a.StartedAt.Before(to) {
			continue
		}
		rt := byPlate[a.Subject.ID]
		if rt == nil {
			continue
		}
		rule := ruleBase(a.Rule)
		rt.Violations[rule]++
		rt.Total++
		tot.Violations[rule]++
		tot.Total++
		if rd := days[a.StartedAt.In(c.Location).Format(time.DateOnly)]; rd != nil {
			rd.Violations[rule]++
			rd.Total++
		}
		if rule == "uncovered_load" {
			end := now
			switch {
			case !a.RuleResolvedAt.IsZero():
				end = a.RuleResolvedAt
			case a.State == alerting.StateResolved:
				end = a.ResolvedAt
			}
			end = minTime(end, to)
			if m := end.Sub(a.StartedAt).Minutes(); m > 0 {
				rt.UncoveredMin += m
				tot.UncoveredMin += m
			}
		}
		if a.Outcome != "" {
			rep.Outcomes[string(a.Outcome)]++
		}
	}
	for _, rt := range append(rep.Trucks, tot) {
		rt.UncoveredMin = round1(rt.UncoveredMin)
		if rt.Trips > 0 {
			rt.Per100Trips = ptr(math.Round(float64(rt.Total)*1000/float64(rt.Trips)) / 10)
		}
	}
	// Worst first: the trucks a manager should talk to.
	sort.SliceStable(rep.Trucks, func(i, j int) bool {
		a, b := rep.Trucks[i], rep.Trucks[j]
		if a.Total != b.Total {
			return a.Total > b.Total
		}
		return a.Plate < b.Plate
	})
	if rep.Trucks == nil {
		rep.Trucks = []*reportTruck{}
	}
	return rep, nil
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	from, to, company, ok := s.parseReport(w, r)
	if !ok {
		return
	}
	rep, err := s.buildReport(from, to, company)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// handleReportCSV serves the per-truck report as CSV, UTF-8 with a byte
// order mark so spreadsheet programs read the Chinese names.
func (s *Server) handleReportCSV(w http.ResponseWriter, r *http.Request) {
	from, to, company, ok := s.parseReport(w, r)
	if !ok {
		return
	}
	rep, err := s.buildReport(from, to, company)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	name := "urbanwatch-report-" + rep.From + "-" + rep.To
	if company != "" {
		name += "-" + company
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", "attachment; filename=\""+name+".csv\"")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("\uFEFF"))
	cw := csv.NewWriter(w)
	head := []string{"车牌 plate", "公司 company", "公司名称 company_name", "趟次 trips"}
	for _, rule := range reportRules {
		head = append(head, ruleNames[rule]+" "+rule)
	}
	head = append(head, "合计 total", "未密闭分钟 uncovered_min", "每百趟违规 per_100_trips")
	cw.Write(head)
	for _, rt := range append(rep.Trucks, rep.Totals) {
		plate := rt.Plate
		if rt == rep.Totals {
			plate = "合计 total"
		}
		row := []string{plate, rt.Company, rt.CompanyName, strconv.Itoa(rt.Trips)}
		for _, rule := range reportRules {
			row = append(row, strconv.Itoa(rt.Violations[rule]))
		}
		per := ""
		if rt.Per100Trips != nil {
			per = strconv.FormatFloat(*rt.Per100Trips, 'f', 1, 64)
		}
		row = append(row, strconv.Itoa(rt.Total), strconv.FormatFloat(rt.UncoveredMin, 'f', 1, 64), per)
		cw.Write(row)
	}
	cw.Flush()
}
