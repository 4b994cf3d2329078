package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordFile: the password comes from a file named by
// database.password_file or ROWGEAR_DB_PASSWORD_FILE, never from the
// command line; a bad file is refused with its place.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cr:et@/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "worker:s3cr:et@/x@tcp(db:3306)/app"
	c := mustParse(t, "all:\n  database:\n    dsn: worker@tcp(db:3306)/app\n    password_file: "+pw+"\n", "", nil)
	if c.Database.DSN != want || c.Database.PasswordFile != pw {
		t.Errorf("password_file: dsn %q file %q, want %q", c.Database.DSN, c.Database.PasswordFile, want)
	}
	c = mustParse(t, "all:\n  database:\n    dsn: worker@tcp(db:3306)/app\n", "", map[string]string{"ROWGEAR_DB_PASSWORD_FILE": pw})
	if c.Database.DSN != want {
		t.Errorf("ROWGEAR_DB_PASSWORD_FILE: dsn %q, want %q", c.Database.DSN, want)
	}
	// A --dsn override without a password gets it too; one with its own keeps it.
	if got, err := c.Database.WithPassword("other@tcp(h:1)/db"); err != nil || got != "other:s3cr:et@/x@tcp(h:1)/db" {
		t.Errorf("WithPassword = %q, %v", got, err)
	}
	if got, _ := c.Database.WithPassword("other:own@tcp(h:1)/db"); got != "other:own@tcp(h:1)/db" {
		t.Errorf("WithPassword kept %q", got)
	}
	// No file: nothing changes.
	c = mustParse(t, "all:\n  database:\n    dsn: u:p@tcp(db:3306)/app\n", "", nil)
	if got, _ := c.Database.WithPassword("x@tcp(h:1)/db"); got != "x@tcp(h:1)/db" || c.Database.DSN != "u:p@tcp(db:3306)/app" {
		t.Errorf("without a password file: %q, %q", got, c.Database.DSN)
	}
	for _, b := range []struct{ yml, env, want string }{
		{"all:\n  database:\n    password_file: " + filepath.Join(dir, "missing") + "\n", "", "t.yml:3: all.database.password_file: password file: open "},
		{"all:\n  database:\n    password_file: " + empty + "\n", "", "t.yml:3: all.database.password_file: password file " + empty + " is empty"},
		{"all:\n  database:\n    dsn: u@tcp(db)/x\n", empty, "t.yml: ROWGEAR_DB_PASSWORD_FILE: password file " + empty + " is empty"},
	} {
		var vars map[string]string
		if b.env != "" {
			vars = map[string]string{"ROWGEAR_DB_PASSWORD_FILE": b.env}
		}
		_, err := parse(t, b.yml, "", vars)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: err %v, want %q", b.yml, err, b.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
