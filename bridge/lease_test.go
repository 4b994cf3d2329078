package bridge_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestHALeaseTakenAway: when another bridge holds the lease (here: the
// test takes it), the active bridge stops publishing and saving, stands
// by, and once the lease is free again takes it back and publishes what
// was written meanwhile.
func TestHALeaseTakenAway(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.yml = regexp.MustCompile(`position: file:\S+`).ReplaceAllString(e.yml, "ha: true\n    lease_ttl: 1s")
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT)")
	got := e.collect("Item")
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bridge.New(ctx, e.config(), bridge.WithLogger(testLogger(t)), bridge.WithInstance("A"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	group := e.config().Binlog.ServerID
	role := func() string {
		var r string
		e.db.QueryRow("SELECT role FROM "+bridge.BridgesTable+" WHERE server_id = ? AND instance = 'A'", group).Scan(&r)
		return r
	}
	testenv.Eventually(t, 30*time.Second, "A active with a saved position", func() bool {
		var n int
		e.db.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable+" WHERE server_id = ?", group).Scan(&n)
		return role() == "active" && n == 1
	})
	for i := range 10 {
		e.exec("INSERT INTO items VALUES (?, 0)", i)
	}
	got.wait(t, 10, 30*time.Second)

	// Another bridge takes the lease.
	e.exec("UPDATE "+bridge.LeaseTable+" SET holder = 'thief', epoch = epoch + 1, expires_at = NOW(6) + INTERVAL 1 HOUR WHERE server_id = ?", group)
	testenv.Eventually(t, 30*time.Second, "A standing by", func() bool { return role() == "standby" })
	var saved string
	e.db.QueryRow("SELECT CONCAT(binlog_file, ':', binlog_pos) FROM "+bridge.PositionTable+" WHERE server_id = ?", group).Scan(&saved)
	var wrote string
	e.db.QueryRow("SELECT NOW(6)").Scan(&wrote)
	for i := 10; i < 20; i++ {
		e.exec("INSERT INTO items VALUES (?, 0)", i)
	}
	// A reports every second while it stands by: three reports later it
	// has had time to publish, had it not stood by.
	testenv.Eventually(t, 30*time.Second, "A to stand by 3 s past the writes", func() bool {
		var ok bool
		e.db.QueryRow("SELECT seen_at > ? + INTERVAL 3 SECOND FROM "+bridge.BridgesTable+" WHERE server_id = ? AND instance = 'A'", wrote, group).Scan(&ok)
		return ok
	})
	if n := got.distinct(); n != 10 {
		t.Fatalf("%d events while another bridge held the lease, want the 10 of before", n)
	}
	var now string
	e.db.QueryRow("SELECT CONCAT(binlog_file, ':', binlog_pos) FROM "+bridge.PositionTable+" WHERE server_id = ?", group).Scan(&now)
	if now != saved {
		t.Errorf("the position moved from %s to %s while another bridge held the lease", saved, now)
	}

	// The lease is free again: A takes it and publishes the rest.
	e.exec("UPDATE "+bridge.LeaseTable+" SET expires_at = '1970-01-02' WHERE server_id = ?", group)
	got.wait(t, 20, 60*time.Second)
	if role() != "active" {
		t.Errorf("A is %s, want active", role())
	}
}
