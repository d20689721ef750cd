package cap

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AtomNamespace is the XML namespace of an Atom 1.0 feed (RFC 4287).
const AtomNamespace = "http://www.w3.org/2005/Atom"

// Entry is one message in the feed; URL is where its CAP document is
// served.
type Entry struct {
	Message *Message
	URL     string
}

// EntryID returns the feed entry id of a message, a URI stable for the
// life of the message and unique as CAP's (sender, identifier) is:
// "urn:oasis:names:tc:emergency:cap:1.2:{sender}:{identifier}", each part
// path-escaped.
func EntryID(m *Message) string {
	return Namespace + ":" + url.PathEscape(m.Sender) + ":" + url.PathEscape(m.Identifier)
}

// Feed renders an Atom 1.0 feed (RFC 4287) of the entries, newest sent
// first (ties: the greater identifier first), for consumers that poll for
// warnings. The feed's id is selfURL, with a rel="self" link to it; its
// updated is updated, or the newest entry's sent when updated is zero.
// Each entry has id EntryID, title the headline (else the event), updated
// the sent time, author the sender name (else the sender), summary the
// description, a rel="alternate" link of type application/cap+xml to URL,
// and a category whose term is the msgType. Entries whose message is nil
// or fails Validate, without a URL, or with the id of another entry make
// Feed return an error.
func Feed(title, selfURL string, updated time.Time, entries []Entry) ([]byte, error) {
	if strings.TrimSpace(title) == "" {
		return nil, errors.New("atom feed: title is missing")
	}
	if _, err := url.Parse(selfURL); err != nil || selfURL == "" {
		return nil, fmt.Errorf("atom feed: self URL %q is not a URL", selfURL)
	}
	sorted := slices.Clone(entries)
	seen := map[string]bool{}
	for i, e := range sorted {
		if err := e.Message.Validate(); err != nil {
			return nil, fmt.Errorf("atom feed: entry %d: %w", i+1, err)
		}
		if _, err := url.Parse(e.URL); err != nil || e.URL == "" {
			return nil, fmt.Errorf("atom feed: entry %d (%s): URL %q is not a URL", i+1, e.Message.Identifier, e.URL)
		}
		id := EntryID(e.Message)
		if seen[id] {
			return nil, fmt.Errorf("atom feed: entry %d: %s appears twice", i+1, id)
		}
		seen[id] = true
	}
	slices.SortStableFunc(sorted, func(a, b Entry) int {
		if c := b.Message.Sent.Compare(a.Message.Sent); c != 0 {
			return c
		}
		return cmp.Compare(b.Message.Identifier, a.Message.Identifier)
	})
	if updated.IsZero() {
		if len(sorted) == 0 {
			return nil, errors.New("atom feed: no updated time and no entries to take it from")
		}
		updated = sorted[0].Message.Sent
	}

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	w := newWriter(&buf)
	root := xml.Name{Space: AtomNamespace, Local: "feed"}
	w.start(root)
	w.elem("id", selfURL)
	w.elem("title", title)
	w.elem("updated", atomTime(updated))
	w.elem("link", "", attr("rel", "self"), attr("type", "application/atom+xml"), attr("href", selfURL))
	if len(sorted) == 0 {
		// RFC 4287 §4.1.1: a feed needs an author unless every entry has one.
		w.author(title)
	}
	for _, e := range sorted {
		w.entry(e)
	}
	w.end(root)
	if err := w.close(); err != nil {
		return nil, fmt.Errorf("atom feed: render: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func (w *writer) entry(e Entry) {
	m := e.Message
	var in Info
	if len(m.Info) > 0 {
		in = m.Info[0]
	}
	name := xml.Name{Local: "entry"}
	var attrs []xml.Attr
	if in.Language != "" {
		attrs = append(attrs, attr("xml:lang", in.Language))
	}
	w.start(name, attrs...)
	w.elem("id", EntryID(m))
	w.elem("title", firstOf(in.Headline, in.Event, m.Identifier))
	w.elem("updated", atomTime(m.Sent))
	w.author(firstOf(in.SenderName, m.Sender))
	if in.Description != "" {
		w.elem("summary", in.Description)
	}
	w.elem("link", "", attr("rel", "alternate"), attr("type", ContentType), attr("href", e.URL))
	w.elem("category", "", attr("term", m.MsgType))
	w.end(name)
}

func (w *writer) author(name string) {
	n := xml.Name{Local: "author"}
	w.start(n)
	w.elem("name", name)
	w.end(n)
}

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

// atomTime writes an RFC 3339 date-time, to the second, in t's own zone.
func atomTime(t time.Time) string { return t.Truncate(time.Second).Format(time.RFC3339) }

func firstOf(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
