package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// XML renders the message as a CAP 1.2 document: the XML declaration, then
// <alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">, elements in the
// schema's order, indented by two spaces. It validates the message first
// (see Validate) and returns the error instead of a document a consumer
// would refuse.
func (m *Message) XML() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("cap message %s: %w", m.ident(), err)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	w := newWriter(&buf)
	root := xml.Name{Space: Namespace, Local: "alert"}
	w.start(root)
	w.elem("identifier", m.Identifier)
	w.elem("sender", m.Sender)
	w.elem("sent", formatTime(m.Sent))
	w.elem("status", m.Status)
	w.elem("msgType", m.MsgType)
	w.elem("scope", m.Scope)
	w.opt("restriction", m.Restriction)
	w.opt("addresses", m.Addresses)
	w.opt("note", m.Note)
	if len(m.References) > 0 {
		refs := make([]string, len(m.References))
		for i, r := range m.References {
			refs[i] = r.String()
		}
		w.elem("references", strings.Join(refs, " "))
	}
	for i := range m.Info {
		w.info(&m.Info[i])
	}
	w.end(root)
	if err := w.close(); err != nil {
		return nil, fmt.Errorf("cap message %s: render: %w", m.ident(), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func (m *Message) ident() string {
	if m == nil || m.Identifier == "" {
		return "(no identifier)"
	}
	return m.Identifier
}

func (w *writer) info(in *Info) {
	name := xml.Name{Local: "info"}
	w.start(name)
	w.opt("language", in.Language)
	for _, c := range in.Category {
		w.elem("category", c)
	}
	w.elem("event", in.Event)
	for _, r := range in.ResponseType {
		w.elem("responseType", r)
	}
	w.elem("urgency", in.Urgency)
	w.elem("severity", in.Severity)
	w.elem("certainty", in.Certainty)
	for _, kv := range in.EventCode {
		w.pair("eventCode", kv)
	}
	if !in.Effective.IsZero() {
		w.elem("effective", formatTime(in.Effective))
	}
	if !in.Expires.IsZero() {
		w.elem("expires", formatTime(in.Expires))
	}
	w.opt("senderName", in.SenderName)
	w.opt("headline", in.Headline)
	w.opt("description", in.Description)
	w.opt("instruction", in.Instruction)
	w.opt("web", in.Web)
	for _, kv := range in.Parameters {
		w.pair("parameter", kv)
	}
	for i := range in.Areas {
		w.area(&in.Areas[i])
	}
	w.end(name)
}

func (w *writer) area(a *Area) {
	name := xml.Name{Local: "area"}
	w.start(name)
	w.elem("areaDesc", a.Desc)
	for _, ring := range a.Polygons {
		w.elem("polygon", formatPolygon(ring))
	}
	for _, c := range a.Circles {
		w.elem("circle", formatCircle(c))
	}
	for _, g := range a.Geocodes {
		w.pair("geocode", g)
	}
	w.end(name)
}

func (w *writer) pair(element string, kv NameValue) {
	name := xml.Name{Local: element}
	w.start(name)
	w.elem("valueName", kv.Name)
	w.elem("value", kv.Value)
	w.end(name)
}

// writer writes a document token by token, keeping the first error. Text
// goes through EncodeToken, which keeps newlines as they are (Marshal would
// write them as "&#xA;").
type writer struct {
	enc *xml.Encoder
	err error
}

func newWriter(buf *bytes.Buffer) *writer {
	enc := xml.NewEncoder(buf)
	enc.Indent("", "  ")
	return &writer{enc: enc}
}

func (w *writer) token(t xml.Token) {
	if w.err == nil {
		w.err = w.enc.EncodeToken(t)
	}
}

func (w *writer) start(name xml.Name, attrs ...xml.Attr) {
	w.token(xml.StartElement{Name: name, Attr: attrs})
}

func (w *writer) end(name xml.Name) { w.token(xml.EndElement{Name: name}) }

// elem writes <name>text</name>.
func (w *writer) elem(name, text string, attrs ...xml.Attr) {
	n := xml.Name{Local: name}
	w.start(n, attrs...)
	if text != "" {
		w.token(xml.CharData(text))
	}
	w.end(n)
}

// opt writes <name>text</name> unless text is empty.
func (w *writer) opt(name, text string) {
	if text != "" {
		w.elem(name, text)
	}
}

func (w *writer) close() error {
	if w.err != nil {
		return w.err
	}
	return w.enc.Close()
}

// The document as encoding/xml reads it.
type (
	xmlAlert struct {
		XMLName     xml.Name  `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
		Identifier  string    `xml:"identifier"`
		Sender      string    `xml:"sender"`
		Sent        string    `xml:"sent"`
		Status      string    `xml:"status"`
		MsgType     string    `xml:"msgType"`
		Scope       string    `xml:"scope"`
		Restriction string    `xml:"restriction"`
		Addresses   string    `xml:"addresses"`
		Note        string    `xml:"note"`
		References  string    `xml:"references"`
		Info        []xmlInfo `xml:"info"`
	}
	xmlInfo struct {
		Language     string    `xml:"language"`
		Category     []string  `xml:"category"`
		Event        string    `xml:"event"`
		ResponseType []string  `xml:"responseType"`
		Urgency      string    `xml:"urgency"`
		Severity     string    `xml:"severity"`
		Certainty    string    `xml:"certainty"`
		EventCode    []xmlPair `xml:"eventCode"`
		Effective    string    `xml:"effective"`
		Expires      string    `xml:"expires"`
		SenderName   string    `xml:"senderName"`
		Headline     string    `xml:"headline"`
		Description  string    `xml:"description"`
		Instruction  string    `xml:"instruction"`
		Web          string    `xml:"web"`
		Parameter    []xmlPair `xml:"parameter"`
		Area         []xmlArea `xml:"area"`
	}
	xmlArea struct {
		Desc    string    `xml:"areaDesc"`
		Polygon []string  `xml:"polygon"`
		Circle  []string  `xml:"circle"`
		Geocode []xmlPair `xml:"geocode"`
	}
	xmlPair struct {
		Name  string `xml:"valueName"`
		Value string `xml:"value"`
	}
)

// Parse reads a CAP 1.2 document, such as one XML wrote, into a Message.
// It fails on a document that is not a CAP 1.2 alert or whose times,
// references, polygons or circles do not parse; it does not check the rest
// (call Validate for that). Elements this package does not model (source,
// code, incidents, onset, resources…) are ignored.
func Parse(b []byte) (*Message, error) {
	var x xmlAlert
	if err := xml.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("parse cap: %w", err)
	}
	m := &Message{
		Identifier:  strings.TrimSpace(x.Identifier),
		Sender:      strings.TrimSpace(x.Sender),
		Status:      strings.TrimSpace(x.Status),
		MsgType:     strings.TrimSpace(x.MsgType),
		Scope:       strings.TrimSpace(x.Scope),
		Restriction: x.Restriction,
		Addresses:   x.Addresses,
		Note:        x.Note,
	}
	fail := func(err error) (*Message, error) {
		return nil, fmt.Errorf("parse cap %s: %w", m.ident(), err)
	}
	var err error
	if m.Sent, err = parseTime(x.Sent); err != nil {
		return fail(fmt.Errorf("sent: %w", err))
	}
	for _, f := range strings.Fields(x.References) {
		parts := strings.Split(f, ",")
		if len(parts) != 3 {
			return fail(fmt.Errorf("reference %q: want sender,identifier,sent", f))
		}
		sent, err := parseTime(parts[2])
		if err != nil {
			return fail(fmt.Errorf("reference %q: %w", f, err))
		}
		m.References = append(m.References, Ref{Sender: parts[0], Identifier: parts[1], Sent: sent})
	}
	for i, xi := range x.Info {
		in, err := xi.info()
		if err != nil {
			return fail(fmt.Errorf("info %d: %w", i+1, err))
		}
		m.Info = append(m.Info, in)
	}
	return m, nil
}

func (x *xmlInfo) info() (Info, error) {
	in := Info{
		Language:     strings.TrimSpace(x.Language),
		Category:     trimAll(x.Category),
		Event:        x.Event,
		ResponseType: trimAll(x.ResponseType),
		Urgency:      strings.TrimSpace(x.Urgency),
		Severity:     strings.TrimSpace(x.Severity),
		Certainty:    strings.TrimSpace(x.Certainty),
		EventCode:    pairs(x.EventCode),
		SenderName:   x.SenderName,
		Headline:     x.Headline,
		Description:  x.Description,
		Instruction:  x.Instruction,
		Web:          strings.TrimSpace(x.Web),
		Parameters:   pairs(x.Parameter),
	}
	var err error
	if x.Effective != "" {
		if in.Effective, err = parseTime(x.Effective); err != nil {
			return Info{}, fmt.Errorf("effective: %w", err)
		}
	}
	if x.Expires != "" {
		if in.Expires, err = parseTime(x.Expires); err != nil {
			return Info{}, fmt.Errorf("expires: %w", err)
		}
	}
	for i, xa := range x.Area {
		a := Area{Desc: xa.Desc, Geocodes: pairs(xa.Geocode)}
		for _, s := range xa.Polygon {
			ring, err := parsePolygon(s)
			if err != nil {
				return Info{}, fmt.Errorf("area %d: %w", i+1, err)
			}
			a.Polygons = append(a.Polygons, ring)
		}
		for _, s := range xa.Circle {
			c, err := parseCircle(s)
			if err != nil {
				return Info{}, fmt.Errorf("area %d: %w", i+1, err)
			}
			a.Circles = append(a.Circles, c)
		}
		in.Areas = append(in.Areas, a)
	}
	return in, nil
}

func trimAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

func pairs(xs []xmlPair) []NameValue {
	if xs == nil {
		return nil
	}
	out := make([]NameValue, len(xs))
	for i, x := range xs {
		out[i] = NameValue{Name: x.Name, Value: x.Value}
	}
	return out
}
