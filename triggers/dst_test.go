package triggers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestTimestampInRepeatedHour: on a server whose system zone has daylight
// saving time, a session at time_zone=SYSTEM sees 00:30 and 01:30 UTC on
// 2024-10-27 both as 02:30 local. CONVERT_TZ(col, @@session.time_zone,
// '+00:00') turns both into 01:30; the generated triggers read the stored
// epoch and get both right. Runs a private mariadbd with TZ=Europe/Berlin
// (the shared one is UTC and has no time-zone tables).
func TestTimestampInRepeatedHour(t *testing.T) {
	t.Parallel()
	db := testenv.StartMariaDB(t, testenv.WithServerEnv("TZ=Europe/Berlin"), testenv.WithoutBinlog()).DB("app")
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP NULL, n INT NOT NULL DEFAULT 0)")
	// The UDF is not installed here: the trigger submits to a stored
	// function that records the payload instead.
	mustExec(t, db, "CREATE TABLE submitted (payload LONGTEXT)")
	mustExec(t, db, "CREATE FUNCTION capture(f TEXT, w LONGTEXT, u TEXT) RETURNS TEXT MODIFIES SQL DATA BEGIN INSERT INTO submitted VALUES (w); RETURN u; END")
	tab, err := sqlschema.LoadTable(context.Background(), db, "", "t")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := Generate(Spec{Namespace: "x", Model: "T", Table: "t", Events: []string{"update"}}, tab)
	if err != nil {
		t.Fatal(err)
	}
	trs[0].Create = strings.Replace(trs[0].Create, "gman_do_background(", "capture(", 1)
	install(t, db, trs)

	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"SET time_zone = '+00:00'",
		"INSERT INTO t (id, ts) VALUES (1, '2024-10-27 00:30:00'), (2, '2024-10-27 01:30:00')",
		"SET time_zone = 'SYSTEM'",
		"UPDATE t SET n = 1",
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var local string
	conn.QueryRowContext(context.Background(), "SELECT CAST(ts AS CHAR) FROM t WHERE id = 2").Scan(&local)
	if local != "2024-10-27 02:30:00" {
		t.Fatalf("the server's zone is not Europe/Berlin: 01:30 UTC shows as %s", local)
	}
	rows, err := db.Query("SELECT payload FROM submitted")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[float64]string{}
	for rows.Next() {
		var p string
		rows.Scan(&p)
		var env struct {
			Row struct {
				ID float64
				TS string
			}
		}
		if err := json.Unmarshal([]byte(p), &env); err != nil {
			t.Fatalf("%v: %s", err, p)
		}
		got[env.Row.ID] = env.Row.TS
	}
	if got[1] != "2024-10-27 00:30:00" || got[2] != "2024-10-27 01:30:00" {
		t.Errorf("ts in UTC = %v, want 1: 00:30, 2: 01:30", got)
	}
}
