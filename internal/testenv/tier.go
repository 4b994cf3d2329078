package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests come in two tiers.
//
//   - Unit tests need nothing but Go: `go test ./...` runs them anywhere.
//   - Integration tests need the real services (gearmand, MariaDB with the
//     UDF, PHP, the tools scripts/services installs). Every testenv helper
//     that hands out a service or a server process calls Integration first.
//
// The integration tier is on when ROWGEAR_INTEGRATION is set (scripts/services
// prints it with the service addresses, so `make test` and a shell that ran
// `eval "$(scripts/services start)"` have it) or when any service variable is
// set by hand. Then a missing service fails the test, never skips it: a run
// meant to test against the services cannot pass by testing nothing. With
// none of them set the integration tests skip, and the package says once how
// to run them.

// IntegrationVar is the variable that asks for the integration tier.
const IntegrationVar = "ROWGEAR_INTEGRATION"

// serviceVars are the variables scripts/services exports; any of them set by
// hand also turns the integration tier on.
var serviceVars = []string{"ROWGEAR_GEARMAN", "ROWGEAR_MYSQL_DSN"}

// IntegrationOn reports whether the integration tier is on.
func IntegrationOn() bool {
	if v := os.Getenv(IntegrationVar); v != "" && v != "0" {
		return true
	}
	for _, v := range serviceVars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// Integration marks t as an integration test: it is skipped when the
// integration tier is off (see IntegrationOn) and goes on otherwise.
func Integration(t testing.TB) {
	t.Helper()
	if IntegrationOn() {
		return
	}
	msg := "integration tests skipped: " + strings.Join(serviceVars, " and ") + " not set; run `make test`, " +
		"or `eval \"$(scripts/services start)\"` from the repo root and then `go test ./...`"
	notice(msg)
	t.Skip(msg)
}

// Tool returns the path of the program name, which an integration test
// runs; install says how to get it. Like Integration it skips when the tier
// is off; when the tier is on a missing program fails the test.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	Integration(t)
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): %s", name, err, install)
	}
	return p
}

var noticed sync.Once

// notice says msg once per test binary, i.e. once per package. `go test
// ./...` shows nothing a passing package prints (it keeps its output for
// failures and -v), so without -v the line goes to the terminal, when there
// is one; otherwise, and with -v, to stdout, where -v shows it.
func notice(msg string) {
	noticed.Do(func() {
		line := pkgDir() + ": " + msg + "\n"
		if !testing.Verbose() {
			if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
				defer tty.Close()
				if _, err := tty.WriteString(line); err == nil {
					return
				}
			}
		}
		fmt.Print(line)
	})
}

// pkgDir names the package under test: go test runs the test binary in the
// package's directory, named here relative to the module root.
func pkgDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			rel, err := filepath.Rel(d, wd)
			if err != nil {
				break
			}
			if rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return wd
}
