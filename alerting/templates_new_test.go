package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestOffenceTemplatesRender renders the overload, unwashed_exit and
// spillage messages from their alerts' details in both languages.
func TestOffenceTemplatesRender(t *testing.T) {
	byName := map[string]int{}
	for i, tpl := range Templates() {
		byName[tpl.Name] = i
	}
	started := time.Date(2026, 11, 24, 22, 5, 0, 0, shanghai)
	for _, tc := range []struct {
		rule    string
		details map[string]any
		zh, en  string
	}{
		{"overload", map[string]any{"load_kg": 23450.0, "rated_load_kg": 20000.0},
			"超量装载：实载23.5吨，核定20.0吨", "23.5 t against 20.0 t rated"},
		{"unwashed_exit", map[string]any{"site": "CS01", "site_name": "奥体中心工地", "wash_s": 4.0},
			"驶出奥体中心工地", "left 奥体中心工地"},
		{"spillage", map[string]any{"drop_pct": 14.6}, "载重骤降15%", "load down 15%"},
	} {
		i, ok := byName[tc.rule]
		if !ok {
			t.Fatalf("no template %s", tc.rule)
		}
		a := &Alert{Rule: tc.rule, StartedAt: started, UpdatedAt: started, Details: tc.details,
			Subject: telemetry.Subject{Kind: telemetry.SubjectTruck, ID: "鲁G·A0001", Name: "鲁G·A0001", CompanyName: "潍坊鸢都运输有限公司",
				District: "奎文区"}}
		for lang, want := range map[string]string{"zh-CN": tc.zh, "en": tc.en} {
			_, text, err := Templates()[i].Render(lang, vars(tc.rule, a, lang, started), shanghai)
			if err != nil || !strings.Contains(text, want) || !strings.Contains(text, "鲁G·A0001") {
				t.Errorf("%s %s: %q, %v; want it to say %q", tc.rule, lang, text, err, want)
			}
		}
		if got := ruleName(tc.rule, "zh-CN"); got == tc.rule {
			t.Errorf("%s has no Chinese name", tc.rule)
		}
	}
}
