// Package alerting turns the rules engine's alert events into messages that
// reach the right people once, in time, and are never lost.
//
// A Manager keeps every alert's lifecycle (firing → acknowledged →
// resolved) with its notes and full history in an embedded, crash-safe
// store; decides who is told (the truck's company compliance managers, the
// inspection team or flood duty officers on duty for the district and hour,
// public warning groups), honouring severity, quiet hours and rate limits;
// escalates alerts nobody acknowledged in time; and hands each decided
// notification to an outbox that sends it exactly once per recipient, also
// across a crash between deciding and sending. Rainstorm and waterlogging
// alerts also become CAP 1.2 warnings (package cap). SMS gateways live in
// package sms.
//
// The Manager consumes alert events through Apply, which returns once the
// events and every decision they caused are durable; a caller acknowledges
// its input only then. Time comes from an injected clock: Tick moves
// escalation, quiet hours and flap windows along, Dispatch sends what is
// due, and Run does both on the wall clock.
package alerting
