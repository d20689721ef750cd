package sms

import (
	"context"

	"github.com/rs/zerolog"
)

// Log "sends" a message by writing it to a logger: the default for a demo
// run, where no gateway is configured. It is safe for concurrent use when the
// logger's writer is.
type Log struct {
	logger zerolog.Logger
}

var _ Sender = (*Log)(nil)

// NewLog returns a sender that writes to logger.
func NewLog(logger zerolog.Logger) *Log {
	return &Log{logger: logger}
}

// Name returns "log".
func (l *Log) Name() string { return "log" }

// Send writes one info line with the provider, id, recipient, template,
// language and text, and never fails. The receipt's MessageID is m.ID.
func (l *Log) Send(_ context.Context, m Message) (Receipt, error) {
	l.logger.Info().
		Str("provider", l.Name()).
		Str("id", m.ID).
		Str("to", m.To).
		Str("template", m.Template).
		Str("lang", m.Lang).
		Str("text", m.Text).
		Msg("sms")
	return Receipt{Provider: l.Name(), MessageID: m.ID}, nil
}
