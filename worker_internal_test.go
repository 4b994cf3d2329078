package rowgear

import (
	"testing"

	"github.com/rowgear/rowgear/config"
)

// TestJournalKeyIsPerApplication: two applications sharing a host, or the
// default state dir, keep their crash journals apart.
func TestJournalKeyIsPerApplication(t *testing.T) {
	key := func(dsn, ns string) string {
		return journalKey(&config.Config{Database: config.Database{DSN: dsn}, Namespace: ns})
	}
	a := key("u:p@tcp(db1:3306)/shop", "rowgear")
	for name, other := range map[string]string{
		"another database":  key("u:p@tcp(db1:3306)/blog", "rowgear"),
		"another server":    key("u:p@tcp(db2:3306)/shop", "rowgear"),
		"another namespace": key("u:p@tcp(db1:3306)/shop", "shop"),
	} {
		if other == a {
			t.Errorf("%s: same journal key %q", name, a)
		}
	}
	if b := key("other:secret@tcp(db1:3306)/shop", "rowgear"); b != a {
		t.Errorf("the account changed the key: %q vs %q", a, b)
	}
	if want := "db1_3306-shop-rowgear"; a != want {
		t.Errorf("key %q, want %q (a file name without the password)", a, want)
	}
}
