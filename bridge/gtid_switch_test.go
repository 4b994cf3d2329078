package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

var (
	fileID = regexp.MustCompile(`^[^:]+\.\d+:\d+:\d+@\d+\.\d{11}[0-9a-f]{4}$`)
	gtidID = regexp.MustCompile(`^\d+-\d+-\d+:\d+@\d{11}[0-9a-f]{4}g$`)
)

// TestMovingToGTIDPositions: a bridge with file positions (binlog.position:
// file) publishes changes and stops; its saved position is rewound to the
// middle of what it published, as when a bridge is killed before its save.
// Restarted with the default (the position table, on MariaDB), it
// publishes the rest of the old bridge's changes again under their file
// ids and seqs, moves to GTID positions at the end of the binlog as it
// found it (one log line), and publishes what follows by GTID, under a new
// history. Every change reaches the handlers once per id, in order per
// row, and the ordering middleware applies each exactly once: a replay is
// no newer than what it applied, and a row's first GTID seq is newer than
// its file seqs, so the replica ends equal to the table. A third start
// resumes by GTID.
func TestMovingToGTIDPositions(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.yml = strings.Replace(e.yml, "position: file:"+e.posFile, "position: file", 1)
	e.replicaTables(0)
	e.exec("CREATE TABLE nudge (id INT AUTO_INCREMENT PRIMARY KEY)")
	raw, record := e.recorder() // what reaches the worker, before the ordering middleware
	applied := e.replicaWorker(e.gearman, record)
	serverID := e.config().Binlog.ServerID
	saved := func() bridge.Position {
		var p bridge.Position
		err := e.db.QueryRow("SELECT binlog_file, binlog_pos, gtid_set, history FROM "+bridge.PositionTable+
			" WHERE server_id = ?", serverID).Scan(&p.File, &p.Pos, &p.GTID, &p.History)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	update := func(from, to, v int) {
		for id := from; id < to; id++ {
			e.exec("UPDATE items SET v = ?, note = 'updated' WHERE id = ?", v, id)
		}
	}
	insert := func(from, to, v int) {
		for id := from; id < to; id++ {
			e.exec("INSERT INTO items VALUES (?, ?, 'inserted')", id, v)
		}
	}

	// File positions: A, then (from the rewound position on) B.
	r := e.startBridge()
	insert(0, 50, 0)
	update(0, 50, 1)
	raw.wait(t, 100, 60*time.Second)
	var midFile string
	var midPos uint32
	var skip any
	cols := []any{&midFile, &midPos, &skip, &skip}
	rows, err := e.db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rows.Columns(); len(c) < 2 || !rows.Next() || rows.Scan(cols[:len(c)]...) != nil {
		t.Fatalf("SHOW MASTER STATUS: columns %v", c)
	}
	rows.Close()
	update(0, 50, 2)
	insert(50, 60, 2)
	raw.wait(t, 160, 60*time.Second)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	old := saved()
	if strings.HasSuffix(old.History, "g") {
		t.Fatalf("binlog.position: file saved %+v: a GTID history", old)
	}
	// Killed before its last saves: B is published, the position is before
	// it (and has no GTID set, as a bridge of before GTID sets saved).
	e.exec("UPDATE "+bridge.PositionTable+" SET binlog_file = ?, binlog_pos = ?, gtid_set = '' WHERE server_id = ?",
		midFile, midPos, serverID)
	receivedBefore := raw.received()

	// The default: B again under its file ids, then GTID positions.
	e.yml = strings.Replace(e.yml, "    position: file\n", "", 1)
	var logs testenv.Buffer
	var out io.Writer = &logs
	if testing.Verbose() {
		out = io.MultiWriter(&logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	r = e.startBridge(bridge.WithLogger(log))
	testenv.Eventually(t, 60*time.Second, "the bridge to move to GTID positions", func() bool {
		e.exec("INSERT INTO nudge VALUES ()") // a transaction past the end it found, if need be
		return strings.Contains(logs.String(), "moved to GTID positions")
	})
	testenv.Eventually(t, 60*time.Second, "the replay of B", func() bool { return raw.received() >= receivedBefore+60 })
	update(0, 60, 3)
	insert(60, 70, 3)
	raw.wait(t, 230, 60*time.Second)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	now := saved()
	if !strings.HasSuffix(now.History, "g") || now.GTID == "" || now.History[:11] <= old.History[:11] {
		t.Fatalf("saved after the move: %+v; want a GTID set and a GTID history after %q", now, old.History)
	}
	if n := strings.Count(logs.String(), "moved to GTID positions"); n != 1 {
		t.Errorf("%d lines say the bridge moved to GTID positions, want 1:\n%s", n, logs.String())
	}
	line := logs.String()[strings.Index(logs.String(), "moved to GTID positions"):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"from=" + midFile, "old_history=" + old.History, "history=" + now.History, "gtid="} {
		if !strings.Contains(line, want) {
			t.Errorf("the move's log line lacks %q: %s", want, line)
		}
	}

	// A third start resumes by GTID: no second move.
	logs = testenv.Buffer{}
	r = e.startBridge(bridge.WithLogger(log))
	update(0, 10, 4)
	raw.wait(t, 240, 60*time.Second)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "moved to GTID positions") || strings.Contains(logs.String(), "file positions saved") {
		t.Errorf("the third start moved again:\n%s", logs.String())
	}

	// Every change once per id: A and B by file position (old history), C
	// and D by GTID (new history); B's replays under B's ids.
	evs := raw.events()
	byID := map[string]*events.Envelope{}
	for _, ev := range evs {
		if prev := byID[ev.ID]; prev != nil && (prev.Seq != ev.Seq || fmt.Sprint(prev.Row) != fmt.Sprint(ev.Row)) {
			t.Errorf("id %s received twice with different contents: %s %s / %s %s", ev.ID, prev.Seq, prev.Row, ev.Seq, ev.Row)
		}
		byID[ev.ID] = ev
	}
	if len(byID) != 240 {
		t.Fatalf("%d distinct ids, want 240 changes (%d events received)", len(byID), len(evs))
	}
	if replays := len(evs) - len(byID); replays < 60 {
		t.Errorf("%d events received again, want B's 60 at least", replays)
	}
	perRow := map[int64][]*events.Envelope{}
	files, gtids := 0, 0
	for _, ev := range byID {
		v := rowValue(t, ev)
		switch {
		case fileID.MatchString(ev.ID) && strings.HasSuffix(ev.ID, "."+old.History) && v <= 2:
			files++
		case gtidID.MatchString(ev.ID) && strings.HasSuffix(ev.ID, "@"+now.History) && v >= 3:
			gtids++
		default:
			t.Errorf("event %s (v=%d) has an id of the wrong form or history", ev.ID, v)
		}
		perRow[rowID(t, ev)] = append(perRow[rowID(t, ev)], ev)
	}
	if files != 160 || gtids != 80 {
		t.Errorf("%d events by file position, %d by GTID; want 160 and 80", files, gtids)
	}
	// Per row, seq order is commit order: v grows with every change.
	for id, evs := range perRow {
		slices.SortFunc(evs, func(a, b *events.Envelope) int { return strings.Compare(a.Seq, b.Seq) })
		for i := 1; i < len(evs); i++ {
			if rowValue(t, evs[i]) <= rowValue(t, evs[i-1]) {
				t.Errorf("row %d: seq %s (v=%d) orders after seq %s (v=%d)", id, evs[i].Seq, rowValue(t, evs[i]),
					evs[i-1].Seq, rowValue(t, evs[i-1]))
			}
		}
	}

	// The ordering middleware applied no change twice (B's replays are no
	// newer than what it applied; an insert handled after its row's update
	// is skipped, as always), and the replica ends with every row's latest
	// state: a row's first GTID seq orders after its file seqs.
	for _, op := range []string{"insert", "update"} {
		fn := events.FuncName(e.ns, "Item", op)
		testenv.Eventually(t, 60*time.Second, "the Item jobs to be worked", func() bool { return queued(t, e.gearman, fn) == 0 })
	}
	e.replicaEqual(60 * time.Second)
	if ins, upd := applied.Insert.Load(), applied.Update.Load(); ins > 70 || upd > 170 || upd < 80 {
		t.Errorf("the handlers applied %d inserts and %d updates: want at most 70 and 170 (each change at most once), "+
			"and every update by GTID (80)", ins, upd)
	}
	t.Logf("%d events received for 240 changes; applied %d inserts, %d updates", len(evs), applied.Insert.Load(), applied.Update.Load())
	var v int
	if err := e.db.QueryRow("SELECT v FROM " + "items_replica WHERE id = 5").Scan(&v); err != nil || v != 4 {
		t.Errorf("row 5 in the replica: v=%d (%v), want 4, its update after the move", v, err)
	}

	// Back to file positions: refused, since their seqs would order below
	// the GTID ones already applied.
	e.yml = strings.Replace(e.yml, "  binlog:\n", "  binlog:\n    position: file\n", 1)
	b, err := bridge.New(context.Background(), e.config(), bridge.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Run(ctx); !errors.Is(err, bridge.ErrConfig) || !strings.Contains(err.Error(), "is a GTID one") {
		t.Errorf("position: file after the move: %v, want a refusal", err)
	}
}

// rowValue is column v of the event's row image.
func rowValue(t *testing.T, ev *events.Envelope) int64 {
	t.Helper()
	return rowColumn(t, ev, "v")
}

func rowID(t *testing.T, ev *events.Envelope) int64 {
	t.Helper()
	return rowColumn(t, ev, "id")
}

func rowColumn(t *testing.T, ev *events.Envelope, col string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.Trim(string(ev.Row[col]), `"`), 10, 64)
	if err != nil {
		t.Fatalf("event %s: column %s = %s: %v", ev.ID, col, ev.Row[col], err)
	}
	return n
}

// TestGTIDPositionsFromAnEmptyBinlog: on a server whose binlog has no GTID
// yet (RESET MASTER), a first start with the default has no GTID position
// to save; the bridge moves to GTID positions at the first transaction
// (its own position save), before any change it publishes.
func TestGTIDPositionsFromAnEmptyBinlog(t *testing.T) {
	m := testenv.StartMariaDB(t)
	e := newEnvOn(t, m.DB("app"), m.DSN+"app", testenv.Gearman(t), map[string]string{"Article": "articles"})
	e.yml = strings.Replace(e.yml, "    position: file:"+e.posFile+"\n", "", 1)
	e.exec("CREATE TABLE articles (id INT PRIMARY KEY, title VARCHAR(100))")
	e.exec("RESET MASTER")
	var gtid string
	if err := e.db.QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&gtid); err != nil || gtid != "" {
		t.Fatalf("gtid_binlog_pos after RESET MASTER: %q, %v", gtid, err)
	}
	got := e.collect("Article")
	var logs testenv.Buffer
	e.startBridge(bridge.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	testenv.Eventually(t, 60*time.Second, "the bridge to move to GTID positions", func() bool {
		return strings.Contains(logs.String(), "moved to GTID positions")
	})
	e.exec("INSERT INTO articles VALUES (1, 'a')")
	e.exec("UPDATE articles SET title = 'b' WHERE id = 1")
	for _, ev := range got.wait(t, 2, 60*time.Second) {
		if !gtidID.MatchString(ev.ID) {
			t.Errorf("event id %q: want a GTID id", ev.ID)
		}
	}
}
