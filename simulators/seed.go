package simulators

// DemoSeed is the seed of `urbanwatch serve -demo`: the demo city's permits
// (deploy/demo/city.yaml) are drawn for it, so the simulated trucks drive the
// routes their permits name.
const DemoSeed int64 = 1
