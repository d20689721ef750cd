// Package deploy holds no code: it is the home of the deployment files
// (docker, compose, k8s, grafana, prometheus, systemd) and of the tests that
// check them (go test ./deploy): the compose file and the Kubernetes
// manifests against their JSON schemas (testdata/schemas), the Prometheus
// rules with promtool, every metric a dashboard or rule names against the
// metrics urbanwatch registers, and the Dockerfile's shape.
package deploy
