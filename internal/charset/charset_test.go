package charset_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestAgainstServer stores hostile values in a column of every character
// set the server lists and compares, byte for byte, Append of what it
// stored with the server's CONVERT(col USING utf8mb4).
func TestAgainstServer(t *testing.T) {
	db, _ := testenv.DB(t)
	rows, err := db.Query("SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME <> 'binary' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	if len(names) < 30 {
		t.Fatalf("only %d character sets: %v", len(names), names)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	if _, err := db.Exec("SET SESSION sql_mode = ''"); err != nil { // store what can be stored
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cs, err := charset.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			tab := "v_" + name
			if _, err := db.Exec("CREATE TABLE " + tab + " (id INT PRIMARY KEY, c VARCHAR(300) CHARACTER SET " + name + ")"); err != nil {
				t.Fatal(err)
			}
			vals := charset.Hostile(name, rnd, 400)
			var q strings.Builder
			q.WriteString("INSERT INTO " + tab + " VALUES ")
			for i, v := range vals {
				if i > 0 {
					q.WriteString(",")
				}
				q.WriteString("(" + itoa(i) + ", X'" + hex.EncodeToString(v) + "')")
			}
			if _, err := db.Exec(q.String()); err != nil {
				t.Fatal(err)
			}
			rows, err := db.Query("SELECT id, CAST(c AS BINARY), CONVERT(c USING utf8mb4) FROM " + tab)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n, bad := 0, 0
			for rows.Next() {
				var id int
				var raw, conv []byte
				if err := rows.Scan(&id, &raw, &conv); err != nil {
					t.Fatal(err)
				}
				n++
				got, err := cs.Append(nil, raw)
				switch {
				case errors.Is(err, charset.ErrNotUTF8):
					if utf8.Valid(conv) {
						t.Errorf("value %d %X: %v, but the server converts it to valid %X", id, raw, err, conv)
						bad++
					}
				case err != nil:
					t.Errorf("value %d %X: %v", id, raw, err)
					bad++
				case !bytes.Equal(got, conv):
					t.Errorf("value %d %X: got %X, server %X", id, raw, got, conv)
					bad++
				}
				if bad > 10 {
					t.Fatal("too many differences")
				}
			}
			if n != len(vals) {
				t.Fatalf("%d rows of %d", n, len(vals))
			}
		})
	}
}

// TestCollations: every collation id the server has names a character set
// this package converts.
func TestCollations(t *testing.T) {
	db, _ := testenv.DB(t)
	m, err := charset.LoadCollations(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if m[2304] != "utf8mb4" || m[8] != "latin1" || m[63] != "binary" || m[28] != "gbk" {
		t.Fatalf("2304=%q 8=%q 63=%q 28=%q", m[2304], m[8], m[63], m[28])
	}
	for id, name := range m {
		if name == "binary" {
			continue
		}
		if _, err := charset.Get(name); err != nil {
			t.Errorf("collation %d: %v", id, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
