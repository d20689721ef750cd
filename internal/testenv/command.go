package testenv

import (
	"os/exec"
	"testing"
)

// Command returns the path of a client program from Mosquitto's tools
// (mosquitto_pub, mosquitto_sub), skipping the test loudly — or failing it
// under RequireEnv — when it is not installed.
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, MosquittoInstallHint, err)
	}
	return p
}
