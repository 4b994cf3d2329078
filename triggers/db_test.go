package triggers

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mikespook/gearman-go/worker"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
)

// coltypes runs one part of testdata/coltypes.sql: 0 the table, 1 the rows.
func coltypes(t *testing.T, db *sql.DB, part int) {
	t.Helper()
	b, err := os.ReadFile("testdata/coltypes.sql")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(b), "\n-- rows\n", 2)
	if len(parts) != 2 {
		t.Fatal("testdata/coltypes.sql has no -- rows line")
	}
	if _, err := db.Exec(parts[part]); err != nil {
		t.Fatalf("coltypes.sql part %d: %v", part, err)
	}
}

func install(t *testing.T, db *sql.DB, trs []Trigger) {
	t.Helper()
	// The commit gate the triggers write (rowgear's migration 00010).
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS "+sqlschema.GateTable+" (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, digest BINARY(32) NOT NULL)")
	for _, tr := range trs {
		if _, err := db.Exec(tr.Drop); err != nil {
			t.Fatalf("%s: %v", tr.Drop, err)
		}
		if _, err := db.Exec(tr.Create); err != nil {
			t.Fatalf("installing %s: %v\n%s", tr.Name, err, tr.Create)
		}
	}
}

// setup loads table from db, generates its triggers under a namespace of
// this test's own (parallel tests never see each other's jobs) and installs them.
func setup(t *testing.T, db *sql.DB, spec Spec) (Spec, []Trigger) {
	t.Helper()
	if spec.Namespace == "" {
		spec.Namespace = testenv.Name(t, "ns")
	}
	tab, err := sqlschema.LoadTable(context.Background(), db, "", spec.Table)
	if err != nil {
		t.Fatal(err)
	}
	trs, err := Generate(spec, tab)
	if err != nil {
		t.Fatal(err)
	}
	install(t, db, trs)
	return spec, trs
}

type job struct {
	Fn, Unique string
	Env        map[string]any
	Data       []byte
}

// queued returns how many jobs of fn wait in gearmand (not counting one a
// worker still holds). A trigger's submit has returned before its statement
// does, so this is exact right after a write.
func queued(t *testing.T, fn string) int {
	t.Helper()
	st, err := testenv.Status(context.Background(), testenv.Gearman(t))
	if err != nil {
		t.Fatal(err)
	}
	return st[fn].Total - st[fn].Running
}

// take runs a worker for fn until it has n jobs, and decodes their payloads.
func take(t *testing.T, fn string, n int) []job {
	t.Helper()
	ch := make(chan job, n+1)
	errs := make(chan error, 1)
	w := worker.New(worker.Unlimited)
	w.ErrorHandler = func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	if err := w.AddServer("tcp", testenv.Gearman(t)); err != nil {
		t.Fatal(err)
	}
	w.AddFunc(fn, func(j worker.Job) ([]byte, error) {
		dec := json.NewDecoder(bytes.NewReader(j.Data()))
		dec.UseNumber()
		var env map[string]any
		if err := dec.Decode(&env); err != nil {
			env = map[string]any{"decode error": err.Error(), "payload": string(j.Data())}
		}
		ch <- job{Fn: j.Fn(), Unique: j.UniqueId(), Env: env, Data: slices.Clone(j.Data())}
		return nil, nil
	}, worker.Unlimited)
	if err := w.Ready(); err != nil {
		t.Fatal(err)
	}
	go w.Work()
	// Not w.Close(): it closes a channel its connection goroutines may still
	// send on (a data race in gearman-go). CANT_DO stops this worker taking
	// more, once gearmand has our WORK_COMPLETEs (CANT_DO with a job in hand
	// requeues it); the idle connection goes with the test binary.
	defer func() {
		testenv.Eventually(t, 60*time.Second, "gearmand to see the jobs of "+fn+" done", func() bool {
			st, err := testenv.Status(context.Background(), testenv.Gearman(t))
			return err == nil && st[fn].Running == 0
		})
		w.RemoveFunc(fn)
	}()
	var out []job
	timeout := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case j := <-ch:
			out = append(out, j)
		case err := <-errs:
			t.Fatalf("gearman worker: %v", err)
		case <-timeout:
			t.Fatalf("got %d of %d jobs of %s", len(out), n, fn)
		}
	}
	return out
}

// one takes the single queued job of fn, failing unless exactly one is queued.
func one(t *testing.T, fn string) map[string]any {
	t.Helper()
	if n := queued(t, fn); n != 1 {
		t.Fatalf("%d jobs of %s queued, want 1", n, fn)
	}
	j := take(t, fn, 1)[0]
	if j.Unique != j.Env["id"] {
		t.Errorf("unique %q != envelope id %v", j.Unique, j.Env["id"])
	}
	if _, err := events.Decode(j.Data); err != nil {
		t.Errorf("events.Decode refuses the trigger's payload: %v\n%s", err, j.Data)
	}
	return j.Env
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// articlesTable creates the articles table of the golden files: the seed's
// Article, as an application would define it.
func articlesTable(t *testing.T, db *sql.DB) {
	t.Helper()
	mustExec(t, db, `CREATE TABLE articles (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  title VARCHAR(200) NOT NULL,
  body TEXT NOT NULL,
  published_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestArticleEvents(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	articlesTable(t, db)
	spec, _ := setup(t, db, Spec{Mode: Strict, Model: "Article", Table: "articles"})
	fn := func(op string) string { return spec.Namespace + ".Article." + op }

	mustExec(t, db, "INSERT INTO articles (title, body, published_at, created_at) VALUES ('Hello', 'World', NULL, '2024-01-02 03:04:05.000006')")
	ins := one(t, fn("insert"))
	var schema string
	db.QueryRow("SELECT DATABASE()").Scan(&schema)
	for k, want := range map[string]string{
		"v": "1", "source": `"trigger"`, "schema": asJSON(schema), "table": `"articles"`, "model": `"Article"`, "op": `"insert"`,
		"pk":       `{"id":1}`,
		"row":      `{"body":"World","created_at":"2024-01-02 03:04:05.000006","id":1,"published_at":null,"title":"Hello"}`,
		"modified": `["id","title","body","published_at","created_at"]`,
	} {
		if got := asJSON(ins[k]); got != want {
			t.Errorf("insert %s = %s, want %s", k, got, want)
		}
	}
	if _, ok := ins["old"]; ok {
		t.Error("insert envelope has old")
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000000Z", ins["ts"].(string))
	if err != nil || time.Since(ts).Abs() > time.Minute {
		t.Errorf("ts %v: %v, want now in UTC with µs", ins["ts"], err)
	}

	mustExec(t, db, "UPDATE articles SET title = 'Hello, again' WHERE id = 1")
	up := one(t, fn("update"))
	if got := asJSON(up["modified"]); got != `["title"]` {
		t.Errorf("modified = %s, want [\"title\"]", got)
	}
	if got := asJSON(up["old"].(map[string]any)["title"]); got != `"Hello"` {
		t.Errorf("old title = %s", got)
	}
	if got := asJSON(up["row"].(map[string]any)["title"]); got != `"Hello, again"` {
		t.Errorf("row title = %s", got)
	}
	if up["id"] == ins["id"] {
		t.Error("two events share an id")
	}

	// Nothing changes: no job. A case-only change is a change, though the
	// column's collation calls the values equal.
	mustExec(t, db, "UPDATE articles SET title = 'Hello, again', body = body WHERE id = 1")
	if n := queued(t, fn("update")); n != 0 {
		t.Fatalf("an UPDATE that changes nothing queued %d jobs", n)
	}
	mustExec(t, db, "UPDATE articles SET title = 'HELLO, AGAIN', published_at = '2024-05-06 07:08:09.5' WHERE id = 1")
	up = one(t, fn("update"))
	if got := asJSON(up["modified"]); got != `["title","published_at"]` {
		t.Errorf("modified = %s", got)
	}
	if got := asJSON(up["row"].(map[string]any)["published_at"]); got != `"2024-05-06 07:08:09.500000"` {
		t.Errorf("published_at = %s", got)
	}

	mustExec(t, db, "DELETE FROM articles WHERE id = 1")
	del := one(t, fn("delete"))
	if _, ok := del["modified"]; ok || asJSON(del["pk"]) != `{"id":1}` || asJSON(del["row"].(map[string]any)["title"]) != `"HELLO, AGAIN"` {
		t.Errorf("delete envelope: %s", asJSON(del))
	}
}

func TestColtypesEnvelope(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	coltypes(t, db, 0)
	tab, err := sqlschema.LoadTable(context.Background(), db, "", "coltypes")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "coltypes", Migration(generateAll(t, Spec{Namespace: "rowgear", Model: "Coltypes", Table: "coltypes"}, tab)))

	spec, _ := setup(t, db, Spec{Model: "Coltypes", Table: "coltypes"})
	coltypes(t, db, 1)
	ct := testenv.LoadColTypes(t)
	fn := spec.Namespace + ".Coltypes.insert"
	n := len(ct.Want)
	if *update {
		n = queued(t, fn)
	}
	if q := queued(t, fn); q != n {
		t.Fatalf("%d insert jobs queued, want %d", q, n)
	}
	rows := map[string]events.Row{}
	for _, j := range take(t, fn, n) {
		env, err := events.Decode(j.Data)
		if err != nil {
			t.Fatalf("events.Decode refuses the trigger's payload: %v\n%s", err, j.Data)
		}
		rows[string(env.PK["id"])] = env.Row
	}
	if *update {
		got, _ := json.MarshalIndent(rows, "", "  ")
		os.WriteFile(ct.ExpectedPath, append(got, '\n'), 0o644)
		ct = testenv.LoadColTypes(t)
	}
	for _, d := range testenv.DiffRows(rows, ct.Want) {
		t.Error(d)
	}

	// A delete carries the row's last image and no modified, as from the binlog.
	mustExec(t, db, "DELETE FROM coltypes WHERE id = 1")
	del := one(t, spec.Namespace+".Coltypes.delete")
	if _, ok := del["modified"]; ok {
		t.Errorf("delete envelope has modified: %v", del["modified"])
	}
}

func TestTimestampIsUTC(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	mustExec(t, db, "CREATE TABLE tz (id INT PRIMARY KEY, ts TIMESTAMP(3) NULL, ts0 TIMESTAMP NULL)")
	spec, _ := setup(t, db, Spec{Model: "Tz", Table: "tz", Events: []string{"insert"}})
	fn := spec.Namespace + ".Tz.insert"
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has no time-zone tables: SYSTEM and offsets are what a
	// session can have. Each row is the same instant, 2024-06-01 10:00:00.250 UTC.
	for i, c := range []struct{ zone, local string }{
		{"SYSTEM", ""}, {"+05:30", "2024-06-01 15:30:00.250"}, {"-08:00", "2024-06-01 02:00:00.250"}, {"+00:00", "2024-06-01 10:00:00.250"},
	} {
		if _, err := conn.ExecContext(context.Background(), "SET time_zone = "+sqlschema.QuoteString(c.zone)); err != nil {
			t.Fatal(err)
		}
		if c.local == "" {
			// SYSTEM: let the server convert, whatever its zone is.
			_, err = conn.ExecContext(context.Background(), "INSERT INTO tz VALUES (?, FROM_UNIXTIME(1717236000.250), FROM_UNIXTIME(1717236000))", i)
		} else {
			_, err = conn.ExecContext(context.Background(), "INSERT INTO tz VALUES (?, ?, ?)", i, c.local, c.local[:19])
		}
		if err != nil {
			t.Fatal(err)
		}
		env := one(t, fn)
		row := env["row"].(map[string]any)
		if row["ts"] != "2024-06-01 10:00:00.250" || row["ts0"] != "2024-06-01 10:00:00" {
			t.Errorf("time_zone %s: ts = %v, ts0 = %v, want 2024-06-01 10:00:00[.250] UTC", c.zone, row["ts"], row["ts0"])
		}
	}
}

// createHostile creates the hostile table in db.
func createHostile(t *testing.T, db *sql.DB) *sqlschema.Table {
	t.Helper()
	tab := hostile()
	var cols []string
	for _, c := range tab.Columns {
		typ := map[string]string{"int": "INT", "varchar": "VARCHAR(20)", "text": "TEXT", "timestamp": "TIMESTAMP(3) NULL", "blob": "BLOB"}[c.DataType]
		cols = append(cols, sqlschema.QuoteIdent(c.Name)+" "+typ)
	}
	mustExec(t, db, "CREATE TABLE "+sqlschema.QuoteIdent(tab.Name)+" ("+strings.Join(cols, ", ")+
		", PRIMARY KEY ("+sqlschema.QuoteIdent("i`d")+", "+sqlschema.QuoteIdent("k'ey")+")) DEFAULT CHARSET=utf8mb4")
	return tab
}

// TestHostileIdentifiers installs and fires triggers on a table and columns
// whose names hold quotes, backquotes, backslashes and non-ASCII (MariaDB identifiers are utf8mb3: no emoji).
func TestHostileIdentifiers(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	tab := createHostile(t, db)
	ns := testenv.Name(t, "ns")
	spec, trs := setup(t, db, Spec{Namespace: ns, Mode: Strict, Model: "Hostile", Table: tab.Name})
	if len(trs) != 3 {
		t.Fatalf("%d triggers", len(trs))
	}
	mustExec(t, db, "SET time_zone = '+00:00'")
	ins := "INSERT INTO " + sqlschema.QuoteIdent(tab.Name) + " VALUES (7, 'it''s', 'a\\\\b \"q\"', '2024-01-01 00:00:00.125', X'FF00')"
	mustExec(t, db, ins)
	env := one(t, spec.Namespace+".Hostile.insert")
	want := `{"--":"/wA=","back\\slash \"q\"":"a\\b \"q\"","i` + "`" + `d":7,"k'ey":"it's","ünï €":"2024-01-01 00:00:00.125"}`
	if got := asJSON(env["row"]); got != want {
		t.Errorf("row = %s\nwant  %s", got, want)
	}
	if env["table"] != tab.Name || env["model"] != "Hostile" {
		t.Errorf("table %v, model %v", env["table"], env["model"])
	}
	mustExec(t, db, "UPDATE "+sqlschema.QuoteIdent(tab.Name)+" SET "+sqlschema.QuoteIdent(`back\slash "q"`)+" = 'x'")
	if got := asJSON(one(t, spec.Namespace+".Hostile.update")["modified"]); got != `["back\\slash \"q\""]` {
		t.Errorf("modified = %s", got)
	}
	drift, err := Check(context.Background(), db, spec)
	if err != nil || len(drift) != 0 {
		t.Errorf("Check right after install: %v, %v", drift, err)
	}
}

// TestOutboxEnvelopeOfHostileIdentifiers: the outbox trigger writes its
// envelope as text (jsonText), not with JSON_OBJECT; on the hostile table
// every event it writes decodes, with the table, key and modified columns
// as JSON_OBJECT would have written them.
func TestOutboxEnvelopeOfHostileIdentifiers(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	tab := createHostile(t, db)
	mustExec(t, db, "CREATE TABLE "+sqlschema.GateTable+" (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "+
		"digest BINARY(32) NULL, fn VARBINARY(255) NULL, payload LONGBLOB NULL, relay_after DATETIME(6) NULL)")
	const model = "Hostile"
	setup(t, db, Spec{Mode: Outbox, Model: model, Table: tab.Name})
	q := sqlschema.QuoteIdent(tab.Name)
	mustExec(t, db, "INSERT INTO "+q+" VALUES (7, 'it''s', 'a\\\\b \"q\"', '2024-01-01 00:00:00.125', X'FF00')")
	mustExec(t, db, "UPDATE "+q+" SET "+sqlschema.QuoteIdent(`back\slash "q"`)+" = 'x'")
	mustExec(t, db, "UPDATE "+q+" SET "+sqlschema.QuoteIdent("k'ey")+" = 'k2'") // a key change: delete + insert
	mustExec(t, db, "DELETE FROM "+q)
	rows, err := db.Query("SELECT id, payload FROM " + sqlschema.GateTable + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id uint64
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			t.Fatal(err)
		}
		env, ok := outbox.Envelope(payload, id)
		if !ok {
			t.Fatalf("row %d: payload is not an object: %s", id, payload)
		}
		ev, err := events.Decode(env)
		if err != nil {
			t.Fatalf("row %d: events.Decode: %v\n%s", id, err, payload)
		}
		if ev.Table != tab.Name || ev.Model != model || ev.Source != events.SourceTrigger {
			t.Errorf("row %d: table %q, model %q, source %q", id, ev.Table, ev.Model, ev.Source)
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Op+" "+asJSON(m["pk"])+" "+asJSON(m["modified"])+" "+fmt.Sprint(m["read_row"] == true, m["row"] != nil))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := `["i` + "`" + `d","k'ey","back\\slash \"q\"","ünï €","--"]`
	want := []string{
		`insert {"i` + "`" + `d":7,"k'ey":"it's"} ` + all + ` true false`,
		`update {"i` + "`" + `d":7,"k'ey":"it's"} ["back\\slash \"q\""] true false`,
		`delete {"i` + "`" + `d":7,"k'ey":"it's"} [] false true`,
		`insert {"i` + "`" + `d":7,"k'ey":"k2"} ` + all + ` true false`,
		`delete {"i` + "`" + `d":7,"k'ey":"k2"} null false true`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStrictAndLenient makes the submit fail: the generated call is pointed
// at a stored function of this database that returns NULL (the real UDF's
// server list is global, and other tests are using it).
func TestStrictAndLenient(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	mustExec(t, db, "CREATE TABLE s (id INT PRIMARY KEY)")
	mustExec(t, db, "CREATE FUNCTION no_submit(f TEXT, w LONGTEXT, u TEXT) RETURNS TEXT NO SQL RETURN NULL")
	var schema string
	db.QueryRow("SELECT DATABASE()").Scan(&schema)
	tab, err := sqlschema.LoadTable(context.Background(), db, "", "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{Strict, Lenient} {
		trs, err := Generate(Spec{Namespace: "x", Mode: mode, Model: "S", Table: "s", Events: []string{"insert"}}, tab)
		if err != nil {
			t.Fatal(err)
		}
		trs[0].Create = strings.Replace(trs[0].Create, "gman_do_background(", sqlschema.QuoteIdent(schema)+".no_submit(", 1)
		install(t, db, trs)
		_, err = db.Exec("INSERT INTO s VALUES (1)")
		var n int
		db.QueryRow("SELECT COUNT(*) FROM s").Scan(&n)
		switch mode {
		case Strict:
			if err == nil || !strings.Contains(err.Error(), "1644") || !strings.Contains(err.Error(), "rowgear: submitting x.S.insert failed: ") || n != 0 {
				t.Errorf("strict: err = %v, rows = %d; want SQLSTATE 45000 naming the function, no row", err, n)
			}
		case Lenient:
			if err != nil || n != 1 {
				t.Errorf("lenient: err = %v, rows = %d; want the write to go through", err, n)
			}
		}
	}
}

func TestCheckDrift(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	articlesTable(t, db)
	spec, trs := setup(t, db, Spec{Model: "Article", Table: "articles"})
	ctx := context.Background()
	drift, err := Check(ctx, db, spec)
	if err != nil || len(drift) != 0 {
		t.Fatalf("after install: drift %v, err %v", drift, err)
	}

	// Hand-altered: the update trigger now ignores the body column.
	altered := strings.Replace(trs[1].Create, "'body', CONVERT(NEW.`body` USING utf8mb4),", "", 1)
	if altered == trs[1].Create {
		t.Fatal("test did not alter the trigger")
	}
	mustExec(t, db, trs[1].Drop)
	mustExec(t, db, altered)
	mustExec(t, db, trs[2].Drop)
	mustExec(t, db, "CREATE TRIGGER rowgear_articles_old AFTER INSERT ON articles FOR EACH ROW SET @x = 1")
	mustExec(t, db, "CREATE TRIGGER app_audit BEFORE INSERT ON articles FOR EACH ROW SET @y = 1") // not ours: ignored

	drift, err = Check(ctx, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range drift {
		got = append(got, d.Kind+" "+d.Trigger)
	}
	slices.Sort(got)
	want := []string{"differs rowgear_articles_update", "extra rowgear_articles_old", "missing rowgear_articles_delete"}
	if !slices.Equal(got, want) {
		t.Fatalf("drift = %v, want %v", drift, want)
	}
	for _, d := range drift {
		if d.Kind == "differs" && !strings.Contains(d.String(), "body differs") {
			t.Errorf("differs drift does not say what: %s", d)
		}
	}
}

func TestLoadTable(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	coltypes(t, db, 0)
	mustExec(t, db, "CREATE TABLE nopk (a INT)")
	ctx := context.Background()
	tab, err := sqlschema.LoadTable(ctx, db, "", "coltypes")
	if err != nil {
		t.Fatal(err)
	}
	c := func(name string) sqlschema.Column { c, _ := tab.Column(name); return c }
	if c("j").DataType != "json" || !c("bu").Unsigned || c("bi").Unsigned || c("ts").Precision != 6 || c("dtm").Precision != 0 ||
		!slices.Equal(tab.PK, []string{"id"}) || len(tab.Columns) != 38 {
		t.Errorf("LoadTable(coltypes) = %+v", tab)
	}
	if _, err := sqlschema.LoadTable(ctx, db, "", "nopk"); err == nil || !strings.Contains(err.Error(), "no primary key") {
		t.Errorf("table without primary key: err = %v", err)
	}
	if _, err := sqlschema.LoadTable(ctx, db, "", "nosuch"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing table: err = %v", err)
	}
}

// TestLatin1Table: a table in a latin1 database (MariaDB's default charset)
// is written, not refused with "Illegal mix of collations", and its text
// arrives as the same characters.
func TestLatin1Table(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	mustExec(t, db, "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci")
	mustExec(t, db, "CREATE TABLE tasks (id BIGINT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200) NOT NULL)")
	spec, _ := setup(t, db, Spec{Mode: Strict, Model: "Task", Table: "tasks"})
	mustExec(t, db, "INSERT INTO tasks (title) VALUES ('café crème')")
	ev := one(t, spec.Namespace+".Task.insert")
	if got := asJSON(ev["row"]); got != `{"id":1,"title":"café crème"}` {
		t.Errorf("row %s", got)
	}
}
