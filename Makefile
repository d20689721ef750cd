# urbanwatch — see README.md.
GO        ?= go
BIN       := bin/urbanwatch
CACHE     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/urbanwatch
INFLUXD   := $(CACHE)/bin/influxd
PROMTOOL  := $(CACHE)/bin/promtool
NATSSERVER := $(CACHE)/bin/nats-server
PKGS      := ./...

.PHONY: all build run test check vet bench eval influxd promtool nats-server clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/urbanwatch

## run: the whole system on embedded defaults with simulated Weifang traffic.
run: build
	$(BIN) serve -config deploy/demo/urbanwatch.yaml -demo

## test: formatting, vet, and every test with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	@# mochi races internally when closed during connection churn; this test
	@# provokes exactly that, so it runs without the race detector.
	$(GO) test -count=1 -run 'CloseUnderConnectionChurn' ./ingest/broker/

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## check: validate the demo configuration and registry.
check: build
	$(BIN) check -config deploy/demo/urbanwatch.yaml

## bench: the benchmarks behind docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./ingest/ ./storage/spool/
	$(GO) test -run '^$$' -bench LoopbackFloor -benchtime 200000x -timeout 30m ./simulators/loadgen/
	$(GO) test -run '^$$' -bench . -benchtime 500000x -timeout 30m ./storage/influx/
	$(GO) test -run '^$$' -bench 'Ingest|Memory' -benchtime 200000x -timeout 30m ./app/
	$(GO) test -run '^$$' -bench 'PublishToAlert' -benchtime 1x -timeout 30m ./app/
	$(GO) test -run '^$$' -bench 'AlertToSMS' -benchtime 1x -timeout 30m ./app/
	$(GO) test -run '^$$' -bench 'EngineCity' -benchtime 2000000x -benchmem -timeout 30m ./rules/
	$(GO) test -run '^$$' -bench 'MemoryPerTruck' -benchtime 1x -timeout 30m ./rules/
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./rules/geo/
	$(GO) test -run '^$$' -bench 'StreamFanout' -benchtime 50x -timeout 30m ./web/
	$(GO) test -run '^$$' -bench 'Observe' -timeout 30m ./web/
	$(GO) test -run '^$$' -bench 'LogStore' -benchtime 20000x -timeout 30m ./cluster/
	$(GO) test -run '^$$' -bench 'ClusterRules' -benchtime 300000x -count 2 -timeout 30m ./cluster/

## eval: the rules over a large simulated night and storm with exact ground
## truth; prints precision and recall per rule.
eval:
	$(GO) run ./cmd/urbanwatch eval -trucks 2000 -rain-gauges 200 -depth-points 100 -hours 8

## influxd: build InfluxDB 1.8.10 once into the cache (make run does this itself).
influxd: $(INFLUXD)
$(INFLUXD):
	GOBIN=$(CACHE)/bin $(GO) install github.com/influxdata/influxdb/cmd/influxd@v1.8.10

## promtool: build Prometheus 3.16's promtool once into the cache (deploy's
## tests check and unit-test deploy/prometheus/rules.yml with it).
promtool: $(PROMTOOL)
$(PROMTOOL):
	GOBIN=$(CACHE)/bin $(GO) install github.com/prometheus/prometheus/cmd/promtool@v0.316.0

## nats-server: build NATS 2.15.3 once into the cache (the cluster tests run
## a 3-node JetStream cluster of it on loopback).
nats-server: $(NATSSERVER)
$(NATSSERVER):
	GOBIN=$(CACHE)/bin $(GO) install github.com/nats-io/nats-server/v2@v2.15.3

clean:
	rm -rf bin data
