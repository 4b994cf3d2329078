package sqlschema_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestKeyCondFindsTheRow: each primary-key column's value, rendered as the
// triggers render it (RowSQL), finds its row again through KeyCond, for
// the kinds a key can have, on the real server.
func TestKeyCondFindsTheRow(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE keyed (
		i BIGINT UNSIGNED, dc DECIMAL(10,2), d DATE, dt DATETIME(6), ts TIMESTAMP(6) NOT NULL DEFAULT '2001-02-03 04:05:06',
		vc VARCHAR(20) CHARACTER SET latin1, vb VARBINARY(8), bt BIT(8), u UUID, n INT,
		PRIMARY KEY (i, dc, d, dt, ts, vc, vb, bt, u))`); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{
		"(18446744073709551615, -12.50, '2026-12-07', '2026-12-07 01:02:03.000004', '2026-12-07 05:06:07.5', 'Grüße', X'00FF0A', b'10100101', '6ccd780c-baba-1026-9564-5b8c656024db', 1)",
		"(1, 0.00, '1000-01-01', '9999-12-31 23:59:59.999999', '2001-02-03 04:05:06', 'a\"b\\\\c', X'', b'0', '00000000-0000-0000-0000-000000000001', 2)",
	} {
		if _, err := db.Exec("INSERT INTO keyed VALUES " + v); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := sqlschema.LoadTable(ctx, db, "", "keyed")
	if err != nil {
		t.Fatal(err)
	}
	pkObj, err := sqlschema.RowSQL(tab, tab.PK)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT " + pkObj + ", n FROM keyed")
	if err != nil {
		t.Fatal(err)
	}
	type keyed struct {
		obj string
		pk  map[string]json.RawMessage
		n   int
	}
	var all []keyed
	for rows.Next() {
		var obj []byte
		var k keyed
		if err := rows.Scan(&obj, &k.n); err != nil {
			t.Fatal(err)
		}
		k.obj = string(obj)
		if err := json.Unmarshal(obj, &k.pk); err != nil {
			t.Fatal(err)
		}
		all = append(all, k)
	}
	rows.Close()
	if len(all) != 2 {
		t.Fatalf("%d rows, want 2", len(all))
	}
	for _, k := range all {
		var conds []string
		var args []any
		for _, name := range tab.PK {
			c, _ := tab.Column(name)
			cond, arg, err := sqlschema.KeyCond(sqlschema.QuoteIdent(name), c, k.pk[name])
			if err != nil {
				t.Fatal(err)
			}
			conds, args = append(conds, cond), append(args, arg)
		}
		var n []int
		r, err := db.Query("SELECT n FROM keyed WHERE "+strings.Join(conds, " AND "), args...)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var v int
			r.Scan(&v)
			n = append(n, v)
		}
		r.Close()
		if len(n) != 1 || n[0] != k.n {
			t.Errorf("key %s: found rows n=%v, want [%d]", k.obj, n, k.n)
		}
	}
	if _, _, err := sqlschema.KeyCond("`i`", sqlschema.Column{Name: "i", DataType: "bigint"}, []byte("null")); err == nil || !strings.Contains(err.Error(), "column i") {
		t.Errorf("KeyCond of null: %v, want an error naming the column", err)
	}
}
