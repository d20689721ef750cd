package sms

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTemplateValidateAcceptsGoodTemplates(t *testing.T) {
	for _, tpl := range []Template{
		uncoveredLoad,
		{Name: "no_vars", Text: map[string]string{"zh-CN": "测试消息"}},
		{Name: "flood", Vars: []Var{{Name: "_depth2", Type: VarDecimal}}, Text: map[string]string{"zh-CN": "积水{_depth2}米，${_depth2}"}},
	} {
		if err := tpl.Validate(); err != nil {
			t.Errorf("%s: %v", tpl.Name, err)
		}
	}
}

func TestTemplateValidateRejects(t *testing.T) {
	base := func() Template {
		return Template{
			Name: "flood_depth",
			Vars: []Var{{Name: "gauge", Type: VarString}, {Name: "depth", Type: VarDecimal}},
			Text: map[string]string{"zh-CN": "{gauge}积水{depth}米", "en": "{gauge}: water {depth} m"},
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Template)
		want   []string // all in the error
	}{
		{"no name", func(t *Template) { t.Name = "" }, []string{`sms template ""`, "name is empty"}},
		{"upper-case var", func(t *Template) { t.Vars[0].Name = "Gauge"; t.Text = map[string]string{"zh-CN": "{depth}"} },
			[]string{`"flood_depth"`, `"Gauge"`, "[a-z_][a-z0-9_]*"}},
		{"var starting with a digit", func(t *Template) { t.Vars[0].Name = "1gauge" }, []string{`"1gauge"`}},
		{"var with a hyphen", func(t *Template) { t.Vars[0].Name = "gauge-id" }, []string{`"gauge-id"`}},
		{"duplicate var", func(t *Template) { t.Vars[1].Name = "gauge" }, []string{`var "gauge" is declared twice`}},
		{"unknown type", func(t *Template) { t.Vars[1].Type = "float" }, []string{`var "depth"`, `unknown type "float"`}},
		{"negative Max", func(t *Template) { t.Vars[0].Max = -1 }, []string{`var "gauge"`, "negative"}},
		{"no zh-CN", func(t *Template) { delete(t.Text, "zh-CN") }, []string{`no "zh-CN" text`}},
		{"undeclared placeholder", func(t *Template) { t.Text["en"] = "{gauge}: {depth} m at {time}" },
			[]string{`lang "en"`, "placeholder {time} is not declared"}},
		{"unused var", func(t *Template) { t.Text["en"] = "{gauge} is flooded" }, []string{`lang "en"`, `var "depth" is not used`}},
		{"unclosed brace", func(t *Template) { t.Text["zh-CN"] = "{gauge}积水{depth米" }, []string{`lang "zh-CN"`}},
		{"stray brace", func(t *Template) { t.Text["zh-CN"] = "{gauge}} {depth}" }, []string{`lang "zh-CN"`, `"}"`}},
		{"empty placeholder", func(t *Template) { t.Text["en"] = "{} {gauge} {depth}" }, []string{`lang "en"`, "{}"}},
		{"empty text", func(t *Template) { t.Text["en"] = " " }, []string{`lang "en"`, "empty"}},
		{"two problems", func(t *Template) { t.Vars[1].Type = ""; t.Text["en"] = "{gauge}" },
			[]string{`var "depth": unknown type`, `lang "en": var "depth" is not used`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl := base()
			tc.mutate(&tpl)
			err := tpl.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, _, rerr := tpl.Render("zh-CN", map[string]any{"gauge": "g", "depth": 1}, nil); rerr == nil {
				t.Error("Render accepted an invalid template")
			}
		})
	}
}

// count is a named integer type, as a rule might use.
type count int

// plate is a named string type.
type plate string

// site is a fmt.Stringer.
type site struct{ name string }

func (s site) String() string { return "工地:" + s.name }

func TestRenderFormatsByType(t *testing.T) {
	one := func(typ VarType, max int, v any, loc *time.Location) (string, error) {
		tpl := Template{Name: "one", Vars: []Var{{Name: "v", Type: typ, Max: max}}, Text: map[string]string{"zh-CN": "[{v}]"}}
		params, text, err := tpl.Render("zh-CN", map[string]any{"v": v}, loc)
		if err != nil {
			return "", err
		}
		if want := "[" + params[0].Value + "]"; text != want {
			t.Errorf("text %q does not carry the param %q", text, params[0].Value)
		}
		return params[0].Value, nil
	}
	eight := time.Date(2026, 7, 1, 16, 5, 59, 0, time.UTC)
	for _, tc := range []struct {
		name string
		typ  VarType
		max  int
		v    any
		loc  *time.Location
		want string
	}{
		{"int", VarInt, 0, 12, nil, "12"},
		{"negative int64", VarInt, 0, int64(-3), nil, "-3"},
		{"uint8", VarInt, 0, uint8(200), nil, "200"},
		{"uint64 max", VarInt, 0, uint64(math.MaxUint64), nil, "18446744073709551615"},
		{"named int", VarInt, 0, count(7), nil, "7"},
		{"integral float", VarInt, 0, 3.0, nil, "3"},
		{"integral float32", VarInt, 0, float32(40), nil, "40"},
		{"decimal from float", VarDecimal, 0, 0.456, nil, "0.5"},
		{"decimal rounds", VarDecimal, 0, 12.25, nil, "12.2"}, // 12.25 is binary 12.2499…
		{"decimal from int", VarDecimal, 0, 12, nil, "12.0"},
		{"decimal from uint", VarDecimal, 0, uint(3), nil, "3.0"},
		{"decimal from float32", VarDecimal, 0, float32(1.5), nil, "1.5"},
		{"decimal negative zero", VarDecimal, 0, -0.01, nil, "0.0"},
		{"time in Weifang", VarTime, 0, eight, shanghai, "00:05"},
		{"time in its own zone", VarTime, 0, eight, nil, "16:05"},
		{"string", VarString, 0, "鲁G12345", nil, "鲁G12345"},
		{"named string", VarString, 0, plate("鲁V00001"), nil, "鲁V00001"},
		{"stringer", VarString, 0, site{"北辰"}, nil, "工地:北辰"},
		{"empty string", VarString, 0, "", nil, ""},
		{"Chinese cut by runes", VarString, 5, "潍坊市寒亭区开元街道", nil, "潍坊市寒…"},
		{"exactly Max is kept", VarString, 5, "潍坊市寒亭", nil, "潍坊市寒亭"},
		{"Max 1", VarString, 1, "潍坊", nil, "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := one(tc.typ, tc.max, tc.v, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("default Max is 35 runes", func(t *testing.T) {
		long := strings.Repeat("渣土车", 14) // 42 runes, 126 bytes
		got, err := one(VarString, 0, long, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := utf8.RuneCountInString(got); n != 35 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
			t.Errorf("got %q (%d runes), want the first 34 runes and …", got, n)
		}
		if got, _ := one(VarString, 0, strings.Repeat("渣", 35), nil); got != strings.Repeat("渣", 35) {
			t.Errorf("35 runes were cut: %q", got)
		}
	})

	for _, tc := range []struct {
		name string
		typ  VarType
		v    any
		want string
	}{
		{"int from string", VarInt, "12", "want int, got string"},
		{"int from fraction", VarInt, 2.5, "fraction"},
		{"int from NaN", VarInt, math.NaN(), "not a number"},
		{"decimal from Inf", VarDecimal, math.Inf(1), "not a number"},
		{"decimal from duration", VarDecimal, 90 * time.Second, "time.Duration"},
		{"time from string", VarTime, "08:00", "want time, got string"},
		{"zero time", VarTime, time.Time{}, "zero"},
		{"string from int", VarString, 42, "want string, got int"},
		{"nil", VarString, nil, "nil"},
	} {
		t.Run("error/"+tc.name, func(t *testing.T) {
			_, err := one(tc.typ, 0, tc.v, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range []string{`sms template "one"`, `var "v"`, tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRenderParamsAndLanguages(t *testing.T) {
	vals := map[string]any{
		"time":  time.Date(2026, 7, 1, 14, 0, 0, 0, time.UTC),
		"site":  strings.Repeat("寒亭区开元街道", 6), // 42 runes
		"plate": "鲁G12345",
		"extra": "ignored",
	}
	params, text, err := uncoveredLoad.Render("zh-CN", vals, shanghai)
	if err != nil {
		t.Fatal(err)
	}
	wantParams := []Param{
		{"plate", "鲁G12345"},
		{"site", "寒亭区开元街道寒亭区开元街道寒亭区开元街道寒亭区开元街道寒亭区开元街…"}, // 34 runes and …
		{"time", "22:00"},
	}
	if !reflect.DeepEqual(params, wantParams) {
		t.Errorf("params = %v, want %v (declared order)", params, wantParams)
	}
	if utf8.RuneCountInString(params[1].Value) != 35 {
		t.Errorf("site not cut to 35 runes: %q", params[1].Value)
	}
	if want := "鲁G12345于22:00驶离" + params[1].Value + "未覆盖篷布，请核查。"; text != want {
		t.Errorf("zh-CN text = %q, want %q", text, want)
	}

	enText := "Truck 鲁G12345 left " + params[1].Value + " uncovered at 22:00; please check."
	zhText := text
	for lang, want := range map[string]string{
		"en":    enText,
		"EN":    enText,
		"en-US": enText,
		"zh-CN": zhText,
		"zh-TW": zhText,
		"fr":    zhText,
		"":      zhText,
	} {
		_, got, err := uncoveredLoad.Render(lang, vals, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Render(%q) text = %q, want %q", lang, got, want)
		}
	}
	if got := uncoveredLoad.Language("fr"); got != "zh-CN" {
		t.Errorf(`Language("fr") = %q`, got)
	}
	if got := uncoveredLoad.Language("en-GB"); got != "en" {
		t.Errorf(`Language("en-GB") = %q`, got)
	}
}

func TestRenderReportsEveryMissingValue(t *testing.T) {
	_, _, err := uncoveredLoad.Render("en", map[string]any{"site": "x"}, shanghai)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`sms template "uncovered_load": var "plate": no value`, `var "time": no value`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if strings.Contains(err.Error(), `"site"`) {
		t.Errorf("error %q blames a present value", err)
	}
}
