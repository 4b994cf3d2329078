package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStartMariaDB checks the settings both kinds of private server get:
// their own tmpdir (a mariadbd on /tmp would delete the shared server's
// temporary tables), an error log where ErrorLog says, and the options.
func TestStartMariaDB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   []Option
		binlog int
		zone   string
	}{
		{name: "default", binlog: 1},
		{name: "options", opts: []Option{WithServerEnv("TZ=Europe/Berlin"), WithArgs("--thread-cache-size=0"), WithoutBinlog()}, zone: "CET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := StartMariaDB(t, tc.opts...)
			db := m.DB("app")
			var tmpdir, plugin, zone, format string
			var binlog, threads int
			if err := db.QueryRow("SELECT @@tmpdir, @@plugin_dir, @@system_time_zone, @@log_bin, @@binlog_format, @@thread_cache_size").
				Scan(&tmpdir, &plugin, &zone, &binlog, &format, &threads); err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(filepath.Clean(tmpdir)) != m.Dir {
				t.Errorf("tmpdir %s is not below %s", tmpdir, m.Dir)
			}
			if filepath.Clean(plugin) != m.PluginDir() {
				t.Errorf("plugin_dir %s, want %s", plugin, m.PluginDir())
			}
			if binlog != tc.binlog || (binlog == 1 && format != "ROW") {
				t.Errorf("log_bin %d binlog_format %s, want log_bin %d", binlog, format, tc.binlog)
			}
			if tc.zone != "" && zone != tc.zone && zone != "CEST" {
				t.Errorf("system_time_zone %s, want %s", zone, tc.zone)
			}
			if tc.opts != nil && threads != 0 {
				t.Errorf("thread_cache_size %d, want 0", threads)
			}
			if fi, err := os.Stat(m.ErrorLog()); err != nil || fi.Size() == 0 {
				t.Errorf("error log %s: %v", m.ErrorLog(), err)
			}
		})
	}
}
