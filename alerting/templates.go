package alerting

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/sms"
)

// The templates that are not a rule's.
const (
	TemplateEscalated = "escalated"
	TemplateResolved  = "resolved"
)

// Variables shared by the truck templates.
var truckVars = []sms.Var{
	{Name: "plate", Type: "string", Max: 12},
	{Name: "company", Type: "string", Max: 20},
	{Name: "time", Type: "time"},
	{Name: "place", Type: "string"},
}

func with(base []sms.Var, extra ...sms.Var) []sms.Var {
	return append(append([]sms.Var(nil), base...), extra...)
}

// Templates returns the SMS template of every rule and of escalation and
// resolution, in zh-CN and English. A gateway that sends only approved
// templates needs each registered with exactly these variables, in this
// order (Tencent's TemplateParamSet is positional), and its id in
// alerting.yaml's sms.templates.
func Templates() []sms.Template {
	return []sms.Template{
		{Name: "uncovered_load", Vars: truckVars, Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}未密闭运输，请及时处置。",
			"en":    "Muck truck {plate} ({company}) is driving with its load uncovered at {place} since {time}. Please act."}},
		{Name: "off_route", Vars: with(truckVars, sms.Var{Name: "distance_m", Type: "int"}), Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}偏离核准路线{distance_m}米，请及时处置。",
			"en":    "Muck truck {plate} ({company}) left its permitted route by {distance_m} m at {place}, {time}. Please act."}},
		{Name: "illegal_dumping", Vars: truckVars, Text: map[string]string{
			"zh-CN": "【紧急】渣土车{plate}（{company}）{time}在{place}疑似倾倒，不在核准消纳场，请立即处置。",
			"en":    "URGENT: muck truck {plate} ({company}) appears to be dumping outside an approved site at {place}, {time}."}},
		{Name: "outside_permit_hours", Vars: truckVars, Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}超出核准时段运输，请及时处置。",
			"en":    "Muck truck {plate} ({company}) is driving outside its permitted hours at {place}, {time}. Please act."}},
		{Name: "no_permit", Vars: truckVars, Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}无有效准运证运输，请及时处置。",
			"en":    "Muck truck {plate} ({company}) is hauling without a valid permit at {place}, {time}. Please act."}},
		{Name: "signal_lost", Vars: truckVars, Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）定位信号中断，最后位置{place}，时间{time}，请核查。",
			"en":    "Muck truck {plate} ({company}) went silent; last seen at {place}, {time}. Please check."}},
		{Name: "zone_violation", Vars: with(truckVars, sms.Var{Name: "zone", Type: "string", Max: 20}), Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{zone}（{place}）违反管控要求，请及时处置。",
			"en":    "Muck truck {plate} ({company}) broke the rules of {zone} at {place}, {time}. Please act."}},
		{Name: "overload", Vars: with(truckVars, sms.Var{Name: "load_t", Type: "decimal"}, sms.Var{Name: "rated_t", Type: "decimal"}), Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}超量装载：实载{load_t}吨，核定{rated_t}吨，请及时处置。",
			"en":    "Muck truck {plate} ({company}) is overloaded at {place}, {time}: {load_t} t against {rated_t} t rated. Please act."}},
		{Name: "unwashed_exit", Vars: with(truckVars, sms.Var{Name: "site", Type: "string", Max: 20}), Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}驶出{site}（{place}）未冲洗车轮，带泥上路，请及时处置。",
			"en":    "Muck truck {plate} ({company}) left {site} ({place}) at {time} without washing its wheels. Please act."}},
		{Name: "spillage", Vars: with(truckVars, sms.Var{Name: "drop_pct", Type: "int"}), Text: map[string]string{
			"zh-CN": "渣土车{plate}（{company}）{time}在{place}疑似道路抛洒，载重骤降{drop_pct}%，请及时处置。",
			"en":    "Muck truck {plate} ({company}) may be spilling its load at {place}, {time}: load down {drop_pct}%. Please act."}},
		{Name: "rainstorm", Vars: []sms.Var{{Name: "place", Type: "string"}, {Name: "level", Type: "string", Max: 6},
			{Name: "hours", Type: "int"}, {Name: "rain_mm", Type: "decimal"}, {Name: "time", Type: "time"}}, Text: map[string]string{
			"zh-CN": "{place}达到暴雨{level}预警标准：{hours}小时降雨{rain_mm}毫米（{time}），请做好防范。",
			"en":    "{place} reached the {level} rainstorm level: {rain_mm} mm in {hours} h ({time}). Take precautions."}},
		{Name: "heavy_rain_1h", Vars: []sms.Var{{Name: "place", Type: "string"}, {Name: "rain_mm", Type: "decimal"},
			{Name: "time", Type: "time"}}, Text: map[string]string{
			"zh-CN": "{place}1小时降雨{rain_mm}毫米，出现短时强降水（{time}），请注意防范。",
			"en":    "Short-duration heavy rain at {place}: {rain_mm} mm in 1 h ({time}). Take care."}},
		{Name: "waterlogging", Vars: []sms.Var{{Name: "place", Type: "string"}, {Name: "depth_cm", Type: "int"},
			{Name: "level", Type: "string", Max: 16}, {Name: "time", Type: "time"}}, Text: map[string]string{
			"zh-CN": "{place}积水深度{depth_cm}厘米，{level}（{time}），请注意绕行。",
			"en":    "{place}: water {depth_cm} cm deep, {level} ({time}). Keep away."}},
		{Name: "sensor_offline", Vars: []sms.Var{{Name: "place", Type: "string"}, {Name: "device", Type: "string", Max: 20},
			{Name: "time", Type: "time"}}, Text: map[string]string{
			"zh-CN": "{place}监测设备{device}自{time}起无数据，请核查。",
			"en":    "Sensor {device} at {place} has sent nothing since {time}. Please check."}},
		{Name: TemplateEscalated, Vars: []sms.Var{{Name: "alert", Type: "string", Max: 20}, {Name: "minutes", Type: "int"},
			{Name: "subject", Type: "string", Max: 20}, {Name: "place", Type: "string"}}, Text: map[string]string{
			"zh-CN": "【升级】{alert}告警{minutes}分钟未确认：{subject}，{place}，请立即处置。",
			"en":    "ESCALATED: {alert} alert unacknowledged for {minutes} min: {subject}, {place}. Please act now."}},
		{Name: TemplateResolved, Vars: []sms.Var{{Name: "alert", Type: "string", Max: 20}, {Name: "subject", Type: "string", Max: 20},
			{Name: "place", Type: "string"}, {Name: "time", Type: "time"}}, Text: map[string]string{
			"zh-CN": "【解除】{alert}：{subject}，{place}，{time}已解除。",
			"en":    "LIFTED: {alert} for {subject}, {place}, at {time}."}},
	}
}

// ruleNames are the rules' names in messages.
var ruleNames = map[string][2]string{ // zh-CN, en
	"uncovered_load":       {"未密闭运输", "uncovered load"},
	"off_route":            {"偏离路线", "off route"},
	"illegal_dumping":      {"违规倾倒", "illegal dumping"},
	"outside_permit_hours": {"超时段运输", "outside hours"},
	"no_permit":            {"无证运输", "no permit"},
	"signal_lost":          {"信号中断", "signal lost"},
	"zone_violation":       {"管控区违规", "zone violation"},
	"rainstorm":            {"暴雨预警", "rainstorm"},
	"heavy_rain_1h":        {"短时强降水", "heavy rain"},
	"waterlogging":         {"内涝积水", "waterlogging"},
	"sensor_offline":       {"设备离线", "sensor offline"},
	"overload":             {"超量装载", "overload"},
	"unwashed_exit":        {"带泥上路", "unwashed exit"},
	"spillage":             {"道路抛洒", "spillage"},
}

var levelNames = map[string][2]string{
	"blue": {"蓝色", "blue"}, "yellow": {"黄色", "yellow"}, "orange": {"橙色", "orange"}, "red": {"红色", "red"},
	"warning": {"积水预警", "flood warning"}, "road_closure": {"道路封闭", "road closed"},
}

func pick(names [2]string, lang string, fallback string) string {
	if names[0] == "" {
		return fallback
	}
	if lang == "en" {
		return names[1]
	}
	return names[0]
}

// ruleTemplate is the template of a rule id ("zone_violation:{zone}" uses
// zone_violation's).
func ruleTemplate(rule string) string {
	base, _, _ := strings.Cut(rule, ":")
	return base
}

// ruleName names a rule in lang.
func ruleName(rule, lang string) string {
	return pick(ruleNames[ruleTemplate(rule)], lang, rule)
}

// place says where an alert is: the gauge or district, else coordinates.
func place(a *Alert) string {
	if a.Subject.Kind == "gauge" {
		if a.Subject.District != "" && !strings.HasPrefix(a.Subject.Name, a.Subject.District) {
			return a.Subject.District + a.Subject.Name
		}
		return a.Subject.Name
	}
	coords := fmt.Sprintf("%.5f,%.5f", a.Location.Lat, a.Location.Lon)
	if a.Subject.District != "" {
		return a.Subject.District + " " + coords
	}
	return coords
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	}
	return 0
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// vars computes template's variables for a in lang; now is the time of an
// escalation or resolution.
func vars(template string, a *Alert, lang string, now time.Time) map[string]any {
	company := a.Subject.CompanyName
	if company == "" {
		company = a.Subject.Company
	}
	v := map[string]any{"plate": a.Subject.ID, "company": company, "time": a.StartedAt, "place": place(a),
		"device": a.Subject.Device}
	d := a.Details
	switch template {
	case "off_route":
		v["distance_m"] = int(num(d["distance_m"]) + 0.5)
	case "overload":
		v["load_t"] = math.Round(num(d["load_kg"])/100) / 10
		v["rated_t"] = math.Round(num(d["rated_load_kg"])/100) / 10
	case "unwashed_exit":
		v["site"] = str(d["site_name"])
	case "spillage":
		v["drop_pct"] = int(num(d["drop_pct"]) + 0.5)
	case "zone_violation":
		zone := str(d["zone_name"])
		if zone == "" {
			zone = strings.TrimPrefix(a.Rule, "zone_violation:")
		}
		v["zone"] = zone
	case "rainstorm":
		level := str(d["level"])
		v["level"] = pick(levelNames[level], lang, level)
		v["hours"] = int(num(d["window_h"]))
		v["rain_mm"] = num(d[level+"_mm"])
		v["time"] = a.UpdatedAt
	case "heavy_rain_1h":
		v["rain_mm"] = num(d["mm"])
		v["time"] = a.UpdatedAt
	case "waterlogging":
		level := str(d["level"])
		v["depth_cm"] = int(num(d["depth_cm"]) + 0.5)
		v["level"] = pick(levelNames[level], lang, level)
		v["time"] = a.UpdatedAt
	case TemplateEscalated:
		v["alert"] = ruleName(a.Rule, lang)
		v["minutes"] = int(now.Sub(a.OpenedAt).Minutes())
		v["subject"] = a.Subject.Name
	case TemplateResolved:
		v["alert"] = ruleName(a.Rule, lang)
		v["subject"] = a.Subject.Name
		v["time"] = a.UpdatedAt
	}
	return v
}
