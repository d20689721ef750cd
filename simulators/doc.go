// Package simulators plays the devices of a Weifang night: licensed muck
// trucks (渣土车) running between construction sites and disposal sites on a
// synthetic road grid, and rain gauges and water-depth points under light rain
// or a passing rainstorm. Each device logs in to the MQTT broker with its own
// credentials from the registry and publishes the JSON of the wire contract
// (docs/protocol.md, see package wire) at QoS 1. A truck loads within its
// rated load and stops in a construction site's wash area before leaving;
// now and then it drives with the cover open, overloads, leaves unwashed,
// spills part of its load at speed or has a load-cell glitch, so the demo
// raises every truck rule.
//
// The models (trucks, gauges, depth points, rain fields) are deterministic
// functions of Options.Seed and the times they are stepped to, so they are
// tested without a broker; Run wires them to paho MQTT clients.
// NewTruckModel, NewRainModels and NewDepthModels expose them for offline
// playback with ground truth (package scenario), and DemoCity builds the
// city model (config.City) of what Run plays; deploy/demo holds it for the
// demo registry's fleets under DemoSeed (WriteCity, TestDemoCityFiles).
//
// Subpackage loadgen is a bare MQTT 3.1.1 publisher for throughput and
// latency benchmarks.
package simulators
