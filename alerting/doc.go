// Package alerting will hold the alert lifecycle store, routing to the people
// on duty, escalation, the notification outbox, template SMS providers and
// CAP 1.2 warnings. It will consume the rules engine's alert events through
// an interface of its own and import only telemetry.
//
// Nothing is implemented here yet; alerting follows the rules engine.
package alerting
