package sms

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// VarType is the type of a template variable; it decides how Render formats
// a value.
type VarType string

// The variable types.
const (
	// VarString takes a string or a fmt.Stringer, cut to Var.Max runes.
	VarString VarType = "string"
	// VarInt takes any Go integer or an integral float, e.g. "12".
	VarInt VarType = "int"
	// VarDecimal takes any Go integer or float, with one decimal place,
	// e.g. "12.5".
	VarDecimal VarType = "decimal"
	// VarTime takes a time.Time, as "15:04" in the Render location.
	VarTime VarType = "time"
)

// DefaultLang is the language every template has and the one Render falls
// back to.
const DefaultLang = "zh-CN"

// defaultMaxRunes is Aliyun's limit on one variable's length.
const defaultMaxRunes = 35

// Var is one typed template variable.
type Var struct {
	// Name is the variable's name, [a-z_][a-z0-9_]*, as in {name}.
	Name string
	// Type is how its value is formatted.
	Type VarType
	// Max is the most runes of a string value (0 means 35, Aliyun's limit);
	// a longer value is cut and ends in "…". Other types ignore it.
	Max int
}

// Template is one rule's message: the same variables in every language. The
// gateways that send templates get the variables (Render's params), the
// others the whole text.
type Template struct {
	// Name identifies the template, e.g. "uncovered_load".
	Name string
	// Vars are the variables in the order the gateways declare them.
	Vars []Var
	// Text maps a language ("zh-CN", "en") to the message with {name}
	// placeholders. Every text uses every variable, and a "{" always opens a
	// placeholder.
	Text map[string]string
}

// Validate checks that the name is set; variable names are unique and match
// [a-z_][a-z0-9_]*; types are known and Max is not negative; a "zh-CN" text
// exists; and in each text every placeholder is well formed and declared and
// every declared variable is used. It reports every problem, each naming the
// template and, for a text, the language.
func (t Template) Validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sms template %q: "+format, append([]any{t.Name}, args...)...))
	}
	if t.Name == "" {
		fail("name is empty")
	}
	declared := make(map[string]bool, len(t.Vars))
	for i, v := range t.Vars {
		switch {
		case !validVarName(v.Name):
			fail("var %d: name %q does not match [a-z_][a-z0-9_]*", i, v.Name)
		case declared[v.Name]:
			fail("var %q is declared twice", v.Name)
		}
		declared[v.Name] = true
		switch v.Type {
		case VarString, VarInt, VarDecimal, VarTime:
		default:
			fail("var %q: unknown type %q (want string, int, decimal or time)", v.Name, v.Type)
		}
		if v.Max < 0 {
			fail("var %q: Max %d is negative", v.Name, v.Max)
		}
	}
	if _, ok := t.Text[DefaultLang]; !ok {
		fail("no %q text", DefaultLang)
	}
	for _, lang := range sortedKeys(t.Text) {
		text := t.Text[lang]
		if lang == "" {
			fail("a text has an empty language")
			continue
		}
		if strings.TrimSpace(text) == "" {
			fail("lang %q: text is empty", lang)
			continue
		}
		names, err := placeholders(text)
		if err != nil {
			fail("lang %q: %v", lang, err)
			continue
		}
		used := make(map[string]bool, len(names))
		for _, n := range names {
			if !declared[n] && !used[n] {
				fail("lang %q: placeholder {%s} is not declared", lang, n)
			}
			used[n] = true
		}
		for _, v := range t.Vars {
			if v.Name != "" && !used[v.Name] {
				fail("lang %q: var %q is not used", lang, v.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// Language returns the language Render uses for lang: lang itself if the
// template has it, else a case-insensitive match, else a text in the same
// base language ("en-US" finds "en"), else "zh-CN".
func (t Template) Language(lang string) string {
	if _, ok := t.Text[lang]; ok && lang != "" {
		return lang
	}
	keys := sortedKeys(t.Text)
	for _, k := range keys {
		if strings.EqualFold(k, lang) {
			return k
		}
	}
	base := baseLang(lang)
	for _, k := range keys {
		if base != "" && strings.EqualFold(baseLang(k), base) {
			return k
		}
	}
	return DefaultLang
}

// Render formats vals by each variable's type and fills the text of lang (see
// Language for the fallback to "zh-CN"). params are in declared order.
//
// int takes any Go integer or an integral float; decimal any integer or float,
// with one decimal place; time a time.Time, as "15:04" in loc (nil: the
// value's own location); string a string or fmt.Stringer, cut to Max runes
// with a final "…". A missing, nil or mistyped value is an error naming it;
// values for undeclared names are ignored. An invalid template is an error.
func (t Template) Render(lang string, vals map[string]any, loc *time.Location) (params []Param, text string, err error) {
	if err := t.Validate(); err != nil {
		return nil, "", err
	}
	var errs []error
	params = make([]Param, 0, len(t.Vars))
	byName := make(map[string]string, len(t.Vars))
	for _, v := range t.Vars {
		raw, ok := vals[v.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("sms template %q: var %q: no value", t.Name, v.Name))
			continue
		}
		s, err := formatVar(v, raw, loc)
		if err != nil {
			errs = append(errs, fmt.Errorf("sms template %q: var %q: %w", t.Name, v.Name, err))
			continue
		}
		params = append(params, Param{Name: v.Name, Value: s})
		byName[v.Name] = s
	}
	if len(errs) > 0 {
		return nil, "", errors.Join(errs...)
	}
	return params, fill(t.Text[t.Language(lang)], byName), nil
}

// formatVar formats one value by its variable's type.
func formatVar(v Var, raw any, loc *time.Location) (string, error) {
	if raw == nil {
		return "", errors.New("value is nil")
	}
	mistyped := func() error {
		return fmt.Errorf("want %s, got %T", v.Type, raw)
	}
	switch v.Type {
	case VarString:
		var s string
		if str, ok := raw.(fmt.Stringer); ok {
			s = str.String()
		} else if rv := reflect.ValueOf(raw); rv.Kind() == reflect.String {
			s = rv.String()
		} else {
			return "", mistyped()
		}
		return truncate(s, v.Max), nil
	case VarInt, VarDecimal:
		if _, ok := raw.(time.Duration); ok {
			return "", fmt.Errorf("want %s, got time.Duration: convert it to a count of units first", v.Type)
		}
		rv := reflect.ValueOf(raw)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if v.Type == VarInt {
				return strconv.FormatInt(rv.Int(), 10), nil
			}
			return strconv.FormatFloat(float64(rv.Int()), 'f', 1, 64), nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if v.Type == VarInt {
				return strconv.FormatUint(rv.Uint(), 10), nil
			}
			return strconv.FormatFloat(float64(rv.Uint()), 'f', 1, 64), nil
		case reflect.Float32, reflect.Float64:
			f := rv.Float()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return "", fmt.Errorf("%v is not a number", f)
			}
			if v.Type == VarInt {
				if f != math.Trunc(f) {
					return "", fmt.Errorf("want int, got %v with a fraction", f)
				}
				return strconv.FormatFloat(f, 'f', 0, 64), nil
			}
			s := strconv.FormatFloat(f, 'f', 1, 64)
			if s == "-0.0" {
				s = "0.0"
			}
			return s, nil
		}
		return "", mistyped()
	case VarTime:
		tm, ok := raw.(time.Time)
		if !ok {
			return "", mistyped()
		}
		if tm.IsZero() {
			return "", errors.New("time is zero")
		}
		if loc != nil {
			tm = tm.In(loc)
		}
		return tm.Format("15:04"), nil
	}
	return "", fmt.Errorf("unknown type %q", v.Type)
}

// truncate cuts s to max runes (0: 35), the last being "…" when cut.
func truncate(s string, max int) string {
	if max <= 0 {
		max = defaultMaxRunes
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	i, n := 0, 0
	for n < max-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return s[:i] + "…"
}

// placeholders returns the names of text's {name} placeholders in order. A
// "{" that does not open a well-formed placeholder, or a stray "}", is an
// error.
func placeholders(text string) ([]string, error) {
	var names []string
	err := scan(text, func(literal string) {}, func(name string) { names = append(names, name) })
	return names, err
}

// fill replaces each {name} in a valid text by vals[name].
func fill(text string, vals map[string]string) string {
	var b strings.Builder
	_ = scan(text, func(literal string) { b.WriteString(literal) }, func(name string) { b.WriteString(vals[name]) })
	return b.String()
}

// scan walks text, calling literal for runs of plain text and placeholder
// for each {name}.
func scan(text string, literal, placeholder func(string)) error {
	for len(text) > 0 {
		i := strings.IndexAny(text, "{}")
		if i < 0 {
			literal(text)
			return nil
		}
		if i > 0 {
			literal(text[:i])
		}
		if text[i] == '}' {
			return errors.New(`"}" without "{"`)
		}
		end := strings.IndexByte(text[i:], '}')
		if end < 0 {
			return errors.New(`"{" without "}"`)
		}
		name := text[i+1 : i+end]
		if !validVarName(name) {
			return fmt.Errorf("placeholder {%s} is not a variable name", name)
		}
		placeholder(name)
		text = text[i+end+1:]
	}
	return nil
}

// validVarName reports a match of [a-z_][a-z0-9_]*.
func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// baseLang is the primary subtag: "en" of "en-US".
func baseLang(lang string) string {
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		return lang[:i]
	}
	return lang
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
