package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// alertingCursor is the alert journal cursor alerting reads through:
//
//	alert journal --cursor "alerting"--> alerting.Manager --> SMS, CAP
const alertingCursor = "alerting"

// alertingStage feeds the alert journal to the alerting Manager and
// acknowledges each batch only after the Manager has made it and every
// decision it caused durable; a crash replays the unacknowledged batch,
// which the Manager recognises by id and version.
type alertingStage struct {
	mg     *alerting.Manager
	cursor *spool.Cursor
	log    zerolog.Logger
}

// newAlerting builds the Manager: its store under DATA_DIR/alerting, the
// SMS gateway the settings select, CAP published on the embedded broker.
func (a *App) newAlerting(settings *config.Alerting) error {
	if settings == nil {
		settings = config.DefaultAlerting()
		if err := settings.Validate(a.o.City); err != nil {
			return fmt.Errorf("default alerting settings: %w", err)
		}
	}
	log := a.log.With().Str("component", "alerting").Logger()
	sender, err := alerting.NewSender(settings.SMS, log)
	if err != nil {
		return err
	}
	opts := alerting.Options{Dir: filepath.Join(a.cfg.DataDir, "alerting"), Config: settings, City: a.o.City,
		SMS: sender, Now: a.o.Now, Logger: log, Registerer: a.metrics}
	if a.broker != nil {
		opts.CAP = a.broker
	}
	if a.alerting, err = alerting.New(opts); err != nil {
		return err
	}
	cur, err := a.journal.Cursor(alertingCursor)
	if err != nil {
		return fmt.Errorf("alert journal cursor %s: %w", alertingCursor, err)
	}
	a.alertStage = &alertingStage{mg: a.alerting, cursor: cur, log: log}
	return nil
}

// Run applies journal batches until ctx ends.
func (s *alertingStage) Run(ctx context.Context) error {
	for {
		b, err := s.cursor.Next(ctx, 256, 1<<20)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("alerting: read journal: %w", err)
		}
		events := make([]*telemetry.Alert, 0, len(b.Records))
		for _, rec := range b.Records {
			_, js, err := decodeJournal(rec)
			if err == nil && tripOf(js) != nil {
				continue // trips are the trips stage's
			}
			ev := new(telemetry.Alert)
			if err == nil {
				err = json.Unmarshal(js, ev)
			}
			if err != nil {
				s.log.Error().Err(err).Msg("undecodable alert journal record skipped")
				continue
			}
			events = append(events, ev)
		}
		if err := s.mg.Apply(events); err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		if err := s.cursor.Ack(b); err != nil {
			return fmt.Errorf("alerting: ack journal: %w", err)
		}
	}
}

// Alerting returns the alert Manager; nil when no city is configured.
func (a *App) Alerting() *alerting.Manager { return a.alerting }
