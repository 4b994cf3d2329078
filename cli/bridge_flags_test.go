package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBridgeHAFlag: --ha, else ROWGEAR_BINLOG_HA, replaces binlog.ha. Seen
// through the bridge's answer to HA with its position in a file (which
// the bridges of a group cannot share): it refuses at once, before any
// database connection; without HA it goes on to the database, here a port
// nobody listens on.
func TestBridgeHAFlag(t *testing.T) {
	const refusal = "binlog.ha needs the position in the database"
	config := func(ha string) string {
		return writeFile(t, "all:\n  models:\n    Item: {table: items, source: binlog}\n"+
			"  database: {dsn: 'root@tcp(127.0.0.1:1)/app'}\n"+
			"  binlog:\n    position: file:"+filepath.Join(t.TempDir(), "pos.json")+"\n    ha: "+ha+"\n")
	}
	for _, c := range []struct {
		name, ha, env string
		args          []string
		code          int
		want          string // in the output
		haOn          bool
	}{
		{name: "--ha", ha: "false", args: []string{"--ha"}, code: 1, haOn: true},
		{name: "--ha=true", ha: "false", args: []string{"--ha=true"}, code: 1, haOn: true},
		{name: "env", ha: "false", env: "true", code: 1, haOn: true},
		{name: "the configuration", ha: "true", code: 1, haOn: true},
		{name: "--ha=false over the configuration", ha: "true", args: []string{"--ha=false"}, code: 1},
		{name: "--ha=false over the env", ha: "false", env: "1", args: []string{"--ha=false"}, code: 1},
		{name: "env false over the configuration", ha: "true", env: "false", code: 1},
		{name: "bad env", ha: "false", env: "maybe", code: 2, want: `ROWGEAR_BINLOG_HA="maybe": want true or false`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("ROWGEAR_BINLOG_HA", c.env)
			code, out := runCLI(t, append([]string{"bridge", "--file", config(c.ha)}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d:\n%s", code, c.code, out)
			}
			if c.want != "" && !strings.Contains(out, c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out)
			}
			if c.want == "" && strings.Contains(out, refusal) != c.haOn {
				t.Errorf("HA on: %v, want %v:\n%s", !c.haOn, c.haOn, out)
			}
			if c.want == "" && !c.haOn && !strings.Contains(out, "127.0.0.1:1") {
				t.Errorf("without HA the bridge did not go on to the database:\n%s", out)
			}
		})
	}
	code, out := runCLI(t, "bridge", "-h")
	if code != 0 || !strings.Contains(out, "--ha") || !strings.Contains(out, "ROWGEAR_BINLOG_HA") {
		t.Errorf("bridge -h: exit %d, no --ha with its env:\n%s", code, out)
	}
}
