package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestIntegrationOn(t *testing.T) {
	for _, c := range []struct {
		integration, gearman, dsn string
		want                      bool
	}{
		{"", "", "", false},
		{"0", "", "", false},
		{"1", "", "", true},
		{"", "127.0.0.1:4730", "", true},
		{"", "", "root@tcp(127.0.0.1:3307)/", true},
	} {
		t.Setenv(IntegrationVar, c.integration)
		t.Setenv("ROWGEAR_GEARMAN", c.gearman)
		t.Setenv("ROWGEAR_MYSQL_DSN", c.dsn)
		if got := IntegrationOn(); got != c.want {
			t.Errorf("ROWGEAR_INTEGRATION=%q ROWGEAR_GEARMAN=%q ROWGEAR_MYSQL_DSN=%q: IntegrationOn() = %v, want %v",
				c.integration, c.gearman, c.dsn, got, c.want)
		}
	}
}

// TestTierChild is run by TestIntegrationTierFailsOrSkips in a child
// process; on its own it does nothing.
func TestTierChild(t *testing.T) {
	if os.Getenv("TESTENV_TIER_CHILD") == "" {
		return
	}
	Gearman(t)
}

// With the tier on a missing service fails the test; with it off the test
// skips and the package says how to run the integration tier.
func TestIntegrationTierFailsOrSkips(t *testing.T) {
	run := func(integration string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTierChild$", "-test.v")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ROWGEAR_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "TESTENV_TIER_CHILD=1", IntegrationVar+"="+integration)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("1")
	if err == nil || !strings.Contains(out, "ROWGEAR_GEARMAN is not set") {
		t.Errorf("tier on, no gearmand: want a failure naming ROWGEAR_GEARMAN, got %v:\n%s", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestTierChild") ||
		strings.Count(out, "integration tests skipped: ROWGEAR_GEARMAN and ROWGEAR_MYSQL_DSN not set; run `make test`") != 2 {
		t.Errorf("tier off: want a skip and one notice, got %v:\n%s", err, out)
	}
}
