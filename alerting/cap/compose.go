package cap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The rules Compose writes warnings for (docs/rules.md, "Flood rules").
const (
	ruleRainstorm    = "rainstorm"
	ruleWaterlogging = "waterlogging"
)

// Default radii of the area around the alert's location when the caller
// gives no polygon and no circle: a rain gauge stands for its
// neighbourhood, a depth point for the underpass or low road it watches.
const (
	rainstormRadiusKM    = 5
	waterloggingRadiusKM = 1
)

// Compose builds the CAP message for one event of a rainstorm or
// waterlogging alert, in zh-CN, following how a Chinese meteorological or
// flood-control service words its warnings.
//
// The msgType is Alert when prev is empty, Cancel when the event is
// resolved, Update otherwise; references list all of prev, in order and
// without repeats (so an Update or Cancel supersedes every earlier message
// of the alert), their sent times written in p.Location. A
// resolved event with no prev returns an error wrapping ErrNothingToCancel.
// The identifier is Identifier(p.RegionCode, a.TS, seq); sent and effective
// are a.TS (to the second, in p.Location). A firing rainstorm expires 6 h
// later (blue, yellow) or 3 h (orange, red), a waterlogging warning 2 h
// later: a warning that still holds then must be issued again (an Update).
// A Cancel has no expiry.
//
// The area is the caller's, plus the region geocode {GeocodeRegion,
// p.RegionCode} unless it is already there; with no polygon and no circle
// it gets a circle of 5 km (rainstorm) or 1 km (waterlogging) around
// a.Location, unless the alert has no location (0, 0). An empty Desc is
// filled with the gauge's district and name.
//
// Details are read tolerantly: numbers may be float64, int or any other Go
// number, json.Number or a numeric string; a missing level is taken from
// the alert's severity. Compose returns an error for any other rule, and
// for a message Validate refuses.
func Compose(p Profile, a *telemetry.Alert, prev []Ref, seq uint64, area Area) (*Message, error) {
	if a == nil {
		return nil, errors.New("compose cap: nil alert")
	}
	fail := func(err error) (*Message, error) {
		return nil, fmt.Errorf("compose cap for alert %s: %w", a.Key(), err)
	}
	if err := p.check(); err != nil {
		return fail(err)
	}
	if a.TS.IsZero() {
		return fail(errors.New("alert has no time"))
	}
	loc := p.Location
	if loc == nil {
		loc = defaultLocation()
	}
	sent := a.TS.Truncate(time.Second).In(loc)

	cancel := a.State == telemetry.AlertResolved
	msgType := MsgUpdate
	switch {
	case cancel && len(prev) == 0:
		return fail(ErrNothingToCancel)
	case cancel:
		msgType = MsgCancel
	case a.State != telemetry.AlertFiring:
		return fail(fmt.Errorf("alert state %q is neither firing nor resolved", a.State))
	case len(prev) == 0:
		msgType = MsgAlert
	}

	e := event{a: a, d: details(a.Details), cancel: cancel, place: placeName(a.Subject), when: sent.Format("2006年1月2日15时04分")}
	var (
		c   content
		err error
	)
	switch a.Rule {
	case ruleRainstorm:
		c, err = e.rainstorm()
	case ruleWaterlogging:
		c, err = e.waterlogging()
	default:
		err = fmt.Errorf("rule %q has no CAP warning (only %s and %s)", a.Rule, ruleRainstorm, ruleWaterlogging)
	}
	if err != nil {
		return fail(err)
	}

	status := p.Status
	if status == "" {
		status = "Actual"
	}
	m := &Message{
		Identifier: Identifier(p.RegionCode, sent, seq),
		Sender:     p.Sender,
		Sent:       sent,
		Status:     status,
		MsgType:    msgType,
		Scope:      "Public",
	}
	seen := map[string]bool{}
	for _, r := range prev {
		r.Sent = r.Sent.Truncate(time.Second).In(loc)
		if s := r.String(); !seen[s] {
			seen[s] = true
			m.References = append(m.References, r)
		}
	}

	in := Info{
		Language:     "zh-CN",
		Category:     c.category,
		Event:        c.event,
		ResponseType: c.response,
		Urgency:      c.urgency,
		Severity:     c.severity,
		Certainty:    "Observed", // measured by our own gauges and depth sensors
		EventCode:    []NameValue{{EventCodeRule, a.Rule}, {EventCodeLevel, c.level}},
		Effective:    sent,
		SenderName:   p.SenderName,
		Headline:     c.headline,
		Description:  c.description,
		Instruction:  c.instruction,
		Parameters:   append(c.params, NameValue{"alert_id", a.ID}),
		Areas:        []Area{composeArea(p, a, area, c.radiusKM, e.place)},
	}
	if a.Version > 0 {
		in.Parameters = append(in.Parameters, NameValue{"alert_version", strconv.Itoa(a.Version)})
	}
	if !cancel {
		in.Expires = sent.Add(c.valid)
	}
	if p.Web != "" {
		in.Web = strings.TrimRight(p.Web, "/") + "/alerts/" + url.PathEscape(a.ID)
	}
	m.Info = []Info{in}
	if err := m.Validate(); err != nil {
		return fail(err)
	}
	return m, nil
}

// check refuses a profile Compose cannot send with.
func (p *Profile) check() error {
	if err := checkToken("profile sender", p.Sender); err != nil {
		return err
	}
	if len(p.RegionCode) != 6 || strings.Trim(p.RegionCode, "0123456789") != "" {
		return fmt.Errorf("profile region code %q is not a 6-digit GB/T 2260 code", p.RegionCode)
	}
	if p.Status != "" {
		if err := oneOf("profile status", p.Status, enumStatus); err != nil {
			return err
		}
	}
	if p.Web != "" {
		u, err := url.Parse(p.Web)
		if err != nil {
			return fmt.Errorf("profile web: %w", err)
		}
		if !u.IsAbs() {
			return fmt.Errorf("profile web %q is not an absolute URL", p.Web)
		}
	}
	return nil
}

// composeArea completes the caller's area: a description, a circle when it
// has no geometry, and the region geocode.
func composeArea(p Profile, a *telemetry.Alert, area Area, radiusKM float64, place string) Area {
	out := Area{
		Desc:     area.Desc,
		Polygons: append([][]telemetry.Location(nil), area.Polygons...),
		Circles:  append([]Circle(nil), area.Circles...),
		Geocodes: append([]Geocode(nil), area.Geocodes...),
	}
	if strings.TrimSpace(out.Desc) == "" {
		out.Desc = place + "周边"
	}
	if len(out.Polygons) == 0 && len(out.Circles) == 0 && a.Location != (telemetry.Location{}) {
		out.Circles = []Circle{{Center: a.Location, RadiusKM: radiusKM}}
	}
	region := Geocode{Name: GeocodeRegion, Value: p.RegionCode}
	found := false
	for _, g := range out.Geocodes {
		found = found || g == region
	}
	if !found {
		out.Geocodes = append(out.Geocodes, region)
	}
	return out
}

// placeName is how the text names the gauge: district then name, without
// repeating a district the name already starts with.
func placeName(s telemetry.Subject) string {
	name := s.Name
	if name == "" {
		name = s.ID
	}
	if s.District != "" && !strings.HasPrefix(name, s.District) {
		name = s.District + name
	}
	return name
}

// content is what a rule's event puts in the message's info.
type content struct {
	category                           []string
	event                              string
	response                           []string
	urgency, severity                  string
	level                              string // the eventCode urbanwatch:level
	headline, description, instruction string
	valid                              time.Duration // from sent to expires; unused on a Cancel
	params                             []NameValue
	radiusKM                           float64
}

// event is one alert event being worded.
type event struct {
	a      *telemetry.Alert
	d      details
	cancel bool
	place  string // district and name
	when   string // sent, as a Chinese date and time
}

// details reads an alert's details tolerantly: they come from JSON, or
// from the rules engine directly, so a number may be any Go number.
type details map[string]any

// num returns the number under key, if there is a finite one.
func (d details) num(key string) (float64, bool) {
	var f float64
	switch v := d[key].(type) {
	case float64:
		f = v
	case float32:
		f = float64(v)
	case int:
		f = float64(v)
	case int8:
		f = float64(v)
	case int16:
		f = float64(v)
	case int32:
		f = float64(v)
	case int64:
		f = float64(v)
	case uint:
		f = float64(v)
	case uint8:
		f = float64(v)
	case uint16:
		f = float64(v)
	case uint32:
		f = float64(v)
	case uint64:
		f = float64(v)
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// str returns the string under key, trimmed and in lower case ("" when
// absent or not a string).
func (d details) str(key string) string {
	s, _ := d[key].(string)
	return strings.ToLower(strings.TrimSpace(s))
}

// param appends {name, value of key} to ps when key holds a number.
func (d details) param(ps []NameValue, name, key string) []NameValue {
	if v, ok := d.num(key); ok {
		ps = append(ps, NameValue{name, fmtNum(v)})
	}
	return ps
}

// fmtNum writes a measurement with at most one decimal: 52.4, 50.
func fmtNum(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// numbered writes guide lines as "1. …；\n2. …。".
func numbered(lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString("；\n")
		}
		fmt.Fprintf(&b, "%d. %s", i+1, l)
	}
	b.WriteString("。")
	return b.String()
}

// rainLevel is one colour of the CMA rainstorm warning signal (暴雨预警信号,
// 《气象灾害预警信号发布与传播办法》, CMA Order No. 16, 2007).
type rainLevel struct {
	name, colour string
	rank         int
	windowH, mm  float64 // the CMA standard: mm in windowH hours
	urgency      string
	severity     string
	// response: blue asks to prepare and watch for later signals (Prepare,
	// Monitor); yellow adds traffic control and stopping outdoor work in
	// the open (Prepare, Avoid); orange stops outdoor work and closes
	// schools and businesses in danger zones (Avoid, Shelter); red stops
	// gatherings, classes and business: stay in a safe place (Shelter,
	// Avoid).
	response []string
	valid    time.Duration
	guide    []string // 防御指南, as the CMA order words it
}

// rainLevelNamed returns the CMA level called name (blue, yellow, orange,
// red).
func rainLevelNamed(name string) (rainLevel, bool) {
	switch name {
	case "blue":
		return rainLevel{name: name, colour: "蓝色", rank: 1, windowH: 12, mm: 50,
			urgency: "Expected", severity: "Minor", response: []string{"Prepare", "Monitor"}, valid: 6 * time.Hour,
			guide: []string{
				"政府及相关部门按照职责做好防暴雨准备工作",
				"学校、幼儿园采取适当措施，保证学生和幼儿安全",
				"驾驶人员应当注意道路积水和交通阻塞，确保安全",
				"检查城市、农田、鱼塘排水系统，做好排涝准备",
			}}, true
	case "yellow":
		return rainLevel{name: name, colour: "黄色", rank: 2, windowH: 6, mm: 50,
			urgency: "Expected", severity: "Moderate", response: []string{"Prepare", "Avoid"}, valid: 6 * time.Hour,
			guide: []string{
				"政府及相关部门按照职责做好防暴雨工作",
				"交通管理部门应当根据路况在强降雨路段采取交通管制措施，在积水路段实行交通引导",
				"切断低洼地带有危险的室外电源，暂停在空旷地方的户外作业，转移危险地带人员和危房居民到安全场所避雨",
				"检查城市、农田、鱼塘排水系统，采取必要的排涝措施",
			}}, true
	case "orange":
		return rainLevel{name: name, colour: "橙色", rank: 3, windowH: 3, mm: 50,
			urgency: "Immediate", severity: "Severe", response: []string{"Avoid", "Shelter"}, valid: 3 * time.Hour,
			guide: []string{
				"政府及相关部门按照职责做好防暴雨应急工作",
				"切断有危险的室外电源，暂停户外作业",
				"处于危险地带的单位应当停课、停业，采取专门措施保护已到校学生、幼儿和其他上班人员的安全",
				"做好城市、农田的排涝，注意防范可能引发的山洪、滑坡、泥石流等灾害",
			}}, true
	case "red":
		return rainLevel{name: name, colour: "红色", rank: 4, windowH: 3, mm: 100,
			urgency: "Immediate", severity: "Extreme", response: []string{"Shelter", "Avoid"}, valid: 3 * time.Hour,
			guide: []string{
				"政府及相关部门按照职责做好防暴雨应急和抢险工作",
				"停止集会、停课、停业（除特殊行业外）",
				"做好山洪、滑坡、泥石流等灾害的防御和抢险工作",
			}}, true
	}
	return rainLevel{}, false
}

// rainLevelOf returns the level held in details[key], or, failing that,
// the one the alert's severity stands for (docs/rules.md: blue minor,
// yellow warning, orange major, red critical).
func rainLevelOf(d details, key, severity string) (rainLevel, bool) {
	if l, ok := rainLevelNamed(d.str(key)); ok {
		return l, true
	}
	bySeverity := map[string]string{"minor": "blue", "warning": "yellow", "major": "orange", "critical": "red"}
	return rainLevelNamed(bySeverity[strings.ToLower(severity)])
}

// rainAccumulations lists the measured accumulations, in the CMA windows,
// as text ("近3小时累计降雨52.4毫米，近6小时58.1毫米…") and as parameters.
func (d details) rainAccumulations() (string, []NameValue) {
	var (
		text   []string
		params []NameValue
	)
	for _, w := range []struct {
		hours string
		keys  []string
	}{{"3", []string{"orange_mm", "red_mm"}}, {"6", []string{"yellow_mm"}}, {"12", []string{"blue_mm"}}} {
		for _, k := range w.keys {
			v, ok := d.num(k)
			if !ok {
				continue
			}
			if len(text) == 0 {
				text = append(text, "近"+w.hours+"小时累计降雨"+fmtNum(v)+"毫米")
			} else {
				text = append(text, "近"+w.hours+"小时"+fmtNum(v)+"毫米")
			}
			params = append(params, NameValue{"rain_" + w.hours + "h_mm", fmtNum(v)})
			break
		}
	}
	return strings.Join(text, "，"), params
}

// rainstorm words a rainstorm event. The headline quotes the window that
// set the level (window_h, and its accumulation); the description all the
// accumulations and the level's standard; the instruction the CMA 防御指南
// of the colour.
func (e *event) rainstorm() (content, error) {
	d := e.d
	c := content{category: []string{"Met"}, radiusKM: rainstormRadiusKM}
	acc, accParams := d.rainAccumulations()
	observed := e.place + "观测到降雨"
	if acc != "" {
		observed = e.place + "观测到：" + acc
	}
	c.params = append(c.params, NameValue{"level", orNone(d.str("level"))})
	if pl := d.str("previous_level"); pl != "" && pl != "none" {
		c.params = append(c.params, NameValue{"previous_level", pl})
	}
	if ch := d.str("change"); ch != "" {
		c.params = append(c.params, NameValue{"change", ch})
	}
	c.params = append(c.params, accParams...)
	c.params = d.param(c.params, "threshold_mm", "threshold_mm")
	c.params = d.param(c.params, "window_h", "window_h")

	if e.cancel {
		// The level being cleared: previous_level on the resolved event.
		l, ok := rainLevelNamed(d.str("previous_level"))
		if !ok {
			l, ok = rainLevelOf(d, "level", e.a.Severity)
		}
		c.event, c.level = "暴雨预警", "none"
		if ok {
			c.event, c.level = "暴雨"+l.colour+"预警", l.name
		}
		c.response = []string{"AllClear"}
		c.urgency, c.severity = "Past", "Minor"
		c.headline = e.place + "解除" + c.event
		c.description = "截至" + e.when + "，" + observed + "。雨势减弱，降雨量已低于暴雨预警标准，解除" + c.event + "。"
		c.instruction = "降雨已减弱，请继续关注天气变化和后续预警信息。积水路段、低洼地带、河道周边和危险边坡等处仍可能发生次生灾害，请注意安全防范。"
		return c, nil
	}

	l, ok := rainLevelOf(d, "level", e.a.Severity)
	if !ok {
		return content{}, fmt.Errorf("rainstorm level %q (severity %q) is not blue, yellow, orange or red", d.str("level"), e.a.Severity)
	}
	window, ok := d.num("window_h")
	if !ok || window <= 0 {
		window = l.windowH
	}
	threshold, ok := d.num("threshold_mm")
	if !ok || threshold <= 0 {
		threshold = l.mm
	}
	standard := fmtNum(window) + "小时降雨量" + fmtNum(threshold) + "毫米以上"
	reached := fmtNum(window) + "小时降雨量已达" + fmtNum(threshold) + "毫米以上"
	measured := ""
	if v, ok := d.num(l.name + "_mm"); ok {
		measured = "：" + fmtNum(window) + "小时降雨" + fmtNum(v) + "毫米"
	}
	prev, hasPrev := rainLevelNamed(d.str("previous_level"))
	change := d.str("change")
	if change == "" || change == "cleared" {
		switch {
		case !hasPrev:
			change = "raised"
		case prev.rank < l.rank:
			change = "upgraded"
		default:
			change = "downgraded"
		}
	}

	c.event, c.level = "暴雨"+l.colour+"预警", l.name
	c.response, c.urgency, c.severity, c.valid = l.response, l.urgency, l.severity, l.valid
	c.instruction = "暴雨" + l.colour + "预警信号防御指南：\n" + numbered(l.guide)
	switch {
	case change == "upgraded" || change == "downgraded":
		from := ""
		if hasPrev {
			from = "由" + prev.colour
		}
		if change == "upgraded" {
			c.headline = e.place + "暴雨预警" + from + "升级为" + l.colour + measured
			c.description = "截至" + e.when + "，" + observed + "。降雨持续，" + reached + "，暴雨预警" + from + "升级为" + l.colour + "，降雨可能持续。"
		} else {
			c.headline = e.place + "暴雨预警" + from + "降级为" + l.colour + measured
			c.description = "截至" + e.when + "，" + observed + "。雨势减弱，暴雨预警" + from + "降级为" + l.colour + "（" + l.colour + "预警标准：" + standard + "）。"
		}
	default:
		c.headline = e.place + c.event + measured
		c.description = "截至" + e.when + "，" + observed + "。" + reached + "，达到暴雨" + l.colour + "预警标准，降雨可能持续。"
	}
	return c, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// waterLevel is one level of the waterlogging rule at a depth point.
type waterLevel struct {
	name     string
	rank     int
	event    string
	severity string
	// response: both levels ask people to keep away from the water (Avoid);
	// a warning also to watch it (Monitor).
	response []string
	guide    []string
}

// waterLevelNamed returns the waterlogging level called name (warning,
// road_closure).
func waterLevelNamed(name string) (waterLevel, bool) {
	safety := []string{
		"不要涉水步行或驾车强行通过积水路段；车辆在积水中熄火后切勿再次启动，应及时离开车辆转移到安全地带",
		"远离积水中的电线杆、路灯、变压器等电力设施，谨防触电；注意井盖移位和敞开的检查井",
	}
	switch name {
	case "warning":
		return waterLevel{name: name, rank: 1, event: "城市内涝预警", severity: "Moderate", response: []string{"Avoid", "Monitor"},
			guide: append(append([]string{"车辆和行人请绕行，避免进入下穿通道、立交桥下及低洼积水路段"}, safety...),
				"请关注积水变化和后续预警信息")}, true
	case "road_closure":
		return waterLevel{name: name, rank: 2, event: "积水路段封闭", severity: "Severe", response: []string{"Avoid"},
			guide: append(append([]string{"该路段已封闭，禁止车辆和行人通行，请服从现场管理人员指挥，提前绕行"}, safety...),
				"请关注积水变化和道路恢复通行信息")}, true
	}
	return waterLevel{}, false
}

// waterLevelOf returns the level held in details[key], or, failing that,
// the one the alert's severity stands for (warning, critical).
func waterLevelOf(d details, key, severity string) (waterLevel, bool) {
	if l, ok := waterLevelNamed(d.str(key)); ok {
		return l, true
	}
	bySeverity := map[string]string{"warning": "warning", "critical": "road_closure"}
	return waterLevelNamed(bySeverity[strings.ToLower(severity)])
}

// waterlogging words a waterlogging event at a depth point.
func (e *event) waterlogging() (content, error) {
	d := e.d
	c := content{category: []string{"Met", "Transport"}, radiusKM: waterloggingRadiusKM, valid: 2 * time.Hour, urgency: "Immediate"}
	c.params = append(c.params, NameValue{"level", orNone(d.str("level"))})
	if pl := d.str("previous_level"); pl != "" && pl != "none" {
		c.params = append(c.params, NameValue{"previous_level", pl})
	}
	for _, k := range []string{"depth_cm", "warn_cm", "close_cm", "rise_cm_per_h", "peak_cm"} {
		c.params = d.param(c.params, k, k)
	}
	depth, hasDepth := d.num("depth_cm")
	facts := ""
	if v, ok := d.num("peak_cm"); ok && v > 0 {
		facts = "，本次过程最大积水深度" + fmtNum(v) + "厘米"
	}

	if e.cancel {
		l, ok := waterLevelNamed(d.str("previous_level"))
		if !ok {
			l, ok = waterLevelOf(d, "level", e.a.Severity)
		}
		what := "内涝预警"
		c.event, c.level = "城市内涝预警", "none"
		if ok {
			c.event, c.level = l.event, l.name
			if l.name == "road_closure" {
				what = "路段封闭和内涝预警"
			}
		}
		c.response = []string{"AllClear"}
		c.urgency, c.severity = "Past", "Minor"
		c.headline = e.place + "积水已消退，解除" + what
		now := e.place + "积水已消退"
		if hasDepth {
			now = e.place + "积水深度已降至" + fmtNum(depth) + "厘米"
			if w, ok := d.num("warn_cm"); ok {
				now += "，低于预警标准（" + fmtNum(w) + "厘米）"
			}
		}
		c.description = "截至" + e.when + "，" + now + facts + "。解除" + what + "。"
		c.instruction = "积水已消退。通过该路段时请减速慢行，注意路面残留积水、淤泥和井盖移位等安全隐患。"
		if l.name == "road_closure" {
			c.instruction += "道路是否恢复通行以现场交通管理为准。"
		}
		return c, nil
	}

	l, ok := waterLevelOf(d, "level", e.a.Severity)
	if !ok {
		return content{}, fmt.Errorf("waterlogging level %q (severity %q) is not warning or road_closure", d.str("level"), e.a.Severity)
	}
	c.event, c.level, c.severity, c.response = l.event, l.name, l.severity, l.response
	c.instruction = numbered(l.guide)
	prev, hasPrev := waterLevelNamed(d.str("previous_level"))
	depthText := ""
	if hasDepth {
		depthText = "积水" + fmtNum(depth) + "厘米"
	}
	var tail string
	switch {
	case hasPrev && prev.rank < l.rank:
		tail = "内涝预警升级为路段封闭"
	case hasPrev && prev.rank > l.rank:
		if hasDepth {
			depthText = "积水回落至" + fmtNum(depth) + "厘米"
		}
		tail = "路段封闭降级为内涝预警"
	case l.name == "road_closure":
		tail = "路段封闭"
	default:
		tail = "城市内涝预警"
	}
	c.headline = e.place + tail
	if depthText != "" {
		c.headline = e.place + depthText + "，" + tail
	}

	var b strings.Builder
	b.WriteString("截至" + e.when + "，" + e.place)
	if hasDepth {
		b.WriteString("积水深度" + fmtNum(depth) + "厘米")
	} else {
		b.WriteString("出现积水")
	}
	var std []string
	if v, ok := d.num("warn_cm"); ok {
		std = append(std, "预警标准"+fmtNum(v)+"厘米")
	}
	if v, ok := d.num("close_cm"); ok {
		std = append(std, "封闭标准"+fmtNum(v)+"厘米")
	}
	if len(std) > 0 {
		b.WriteString("（" + strings.Join(std, "，") + "）")
	}
	if r, ok := d.num("rise_cm_per_h"); ok {
		switch rr := fmtNum(math.Abs(r)); {
		case rr == "0":
			b.WriteString("，水位基本稳定")
		case r > 0:
			b.WriteString("，水位每小时上涨约" + rr + "厘米")
		default:
			b.WriteString("，水位每小时下降约" + rr + "厘米")
		}
	}
	b.WriteString(facts)
	if l.name == "road_closure" {
		b.WriteString("。已达到道路封闭标准，该路段实施封闭。")
	} else {
		b.WriteString("。已达到城市内涝预警标准。")
	}
	c.description = b.String()
	return c, nil
}
