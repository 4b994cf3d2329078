package dispatch

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/rowmap"
	"github.com/rowgear/rowgear/internal/testenv"
)

// colTypesRecord has a field for every column of the column-type table
// (triggers/testdata/coltypes.sql), of the types events.Row.Scan accepts.
type colTypesRecord struct {
	Record
	ID   int                 `db:"id,pk"`
	I    *int32              `db:"i"`
	IU   *uint32             `db:"iu"`
	BI   *int64              `db:"bi"`
	BU   *uint64             `db:"bu"`
	TI   *int8               `db:"ti"`
	DC   *string             `db:"dc"`
	F    *float32            `db:"f"`
	D    *float64            `db:"d"`
	DT   *time.Time          `db:"dt"`
	TM   *time.Duration      `db:"tm"`
	DTM  *time.Time          `db:"dtm"`
	DTM6 sql.Null[time.Time] `db:"dtm6"`
	TS   *time.Time          `db:"ts"`
	Y    *int                `db:"y"`
	J    json.RawMessage     `db:"j"`
	BL   []byte              `db:"bl"`
	VB   []byte              `db:"vb"`
	BT   *uint8              `db:"bt"`
	E    *string             `db:"e"`
	ST   *string             `db:"st"`
	CH   *string             `db:"ch"`
	VC   *string             `db:"vc"`
	TX   sql.NullString      `db:"tx"`
	MU   *uint32             `db:"mu"`
	SM   *int16              `db:"sm"`
	T0   *time.Duration      `db:"t0"`
	TS0  *time.Time          `db:"ts0"`
	B64  *uint64             `db:"b64"`
	BN   []byte              `db:"bn"`
	L1   *string             `db:"l1"`
	L1T  *string             `db:"l1t"`
	E1   *string             `db:"e1"`
	UU   *string             `db:"uu"`
	I4   *string             `db:"i4"`
	I6   *string             `db:"i6"`
	G    *int64              `db:"g"`
	GS   *string             `db:"gs"`
}

// TestRefreshLoadsAsEventsDecode: every row of the column-type table loads
// by primary key into the same field values its event decodes into
// (TIME into time.Duration, BIT into uint64, NULL JSON into
// json.RawMessage, zero dates, …).
func TestRefreshLoadsAsEventsDecode(t *testing.T) {
	ct := testenv.LoadColTypes(t)
	db, dsn := testenv.DB(t)
	if _, err := db.Exec(ct.Table); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ct.Rows); err != nil {
		t.Fatal(err)
	}
	app, err := OpenDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cols, err := rowmap.Columns(reflect.TypeFor[colTypesRecord]())
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(app, "", "coltypes", cols)
	for id, row := range ct.Want {
		var fromEvent colTypesRecord
		if err := row.Scan(&fromEvent); err != nil {
			t.Fatalf("row %s: the event does not decode: %v", id, err)
		}
		loaded := colTypesRecord{ID: fromEvent.ID}
		if err := src.load(context.Background(), reflect.ValueOf(&loaded)); err != nil {
			t.Errorf("row %s: %v", id, err)
			continue
		}
		fromEvent.J, loaded.J = compactJSON(t, fromEvent.J), compactJSON(t, loaded.J)
		if !reflect.DeepEqual(loaded, fromEvent) {
			t.Errorf("row %s: loaded\n%+v\nthe event decodes to\n%+v", id, loaded, fromEvent)
		}
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRefreshFailureLeavesRecord: a row that does not fit the struct fails
// the load and leaves every field as it was.
func TestRefreshFailureLeavesRecord(t *testing.T) {
	db, dsn := testenv.DB(t)
	if _, err := db.Exec("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), n INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO items VALUES (1, 'new name', 300)"); err != nil {
		t.Fatal(err)
	}
	app, err := OpenDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	type item struct {
		Record
		ID   int    `db:"id,pk"`
		Name string `db:"name"`
		N    int8   `db:"n"` // 300 does not fit
	}
	cols, err := rowmap.Columns(reflect.TypeFor[item]())
	if err != nil {
		t.Fatal(err)
	}
	rec := item{ID: 1, Name: "old name", N: 7}
	err = newSource(app, "", "items", cols).load(context.Background(), reflect.ValueOf(&rec))
	if !errors.Is(err, events.ErrValue) {
		t.Fatalf("load of 300 into int8: err = %v, want events.ErrValue", err)
	}
	if rec.Name != "old name" || rec.N != 7 {
		t.Errorf("a failed load changed the record: %+v", rec)
	}
}

// TestRefreshWaitsForCommit: a Refresh of a row whose insert is still
// committing waits for the commit and loads the row, rather than calling
// it a ghost. MariaDB sends a transaction's binlog events before InnoDB
// shows its commit to other sessions, so a fast binlog handler meets this.
func TestRefreshWaitsForCommit(t *testing.T) {
	db, dsn := testenv.DB(t)
	if _, err := db.Exec("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	app, err := OpenDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	type item struct {
		Record
		ID   int    `db:"id,pk"`
		Name string `db:"name"`
	}
	cols, err := rowmap.Columns(reflect.TypeFor[item]())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO items VALUES (1, 'committing')"); err != nil {
		t.Fatal(err)
	}
	rec := item{ID: 1}
	done := make(chan error, 1)
	go func() { done <- newSource(app, "", "items", cols).load(ctx, reflect.ValueOf(&rec)) }()
	// The Refresh's statement is seen running in the server, so it read
	// before the commit: a plain read would return no row now. (INNODB_TRX
	// does not list a prepared autocommit read that waits, in 10.11.19.)
	testenv.Eventually(t, 60*time.Second, "the Refresh's read to be running in the server", func() bool {
		var n int
		err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE DB = DATABASE() AND INFO LIKE 'SELECT JSON_OBJECT(%LOCK IN SHARE MODE'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("Refresh returned before the commit: %v (record %+v)", err, rec)
		default:
		}
		return n > 0
	})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || rec.Name != "committing" {
		t.Fatalf("Refresh after the commit: err %v, record %+v", err, rec)
	}
}
