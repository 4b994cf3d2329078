package testenv

import (
	"os/exec"
	"testing"
)

// PHP returns the path of a php binary with the gearman extension, for the
// interop tests; it fails the test when there is none. scripts/services
// installs Debian's php-cli and php-gearman.
func PHP(t testing.TB) string {
	t.Helper()
	php := Tool(t, "php", "install php-cli and php-gearman with `scripts/services install`")
	out, err := exec.Command(php, "-r", `exit(extension_loaded("gearman") ? 0 : 1);`).CombinedOutput()
	if err != nil {
		t.Fatalf("php has no gearman extension (%v %s): install php-gearman with `scripts/services install`", err, out)
	}
	return php
}
