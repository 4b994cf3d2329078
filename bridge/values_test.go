package bridge

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rowgear/rowgear/internal/testenv"
)

// TestFloatTextLikeMariaDB: the bridge writes FLOAT and DOUBLE values as
// MariaDB writes them in JSON_OBJECT (the trigger source), for random bit
// patterns and for decimal-looking values around the switch to exponents.
func TestFloatTextLikeMariaDB(t *testing.T) {
	db, _ := testenv.DB(t)
	if _, err := db.Exec("CREATE TABLE floats (id INT PRIMARY KEY, d DOUBLE, f FLOAT)"); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ds []float64
	var fs []float32
	for _, x := range []float64{0, 1, -1, 0.1, 1e15, 1e16, 1234567890123456.8, 1.2345678901234568e17, 1e-14, 1e-15,
		1.5e-15, 0.00000015, 1e308, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 16777217, 123456789} {
		if f := float32(x); !math.IsInf(float64(f), 0) {
			ds, fs = append(ds, x), append(fs, f)
		}
	}
	for len(ds) < 3000 {
		var d float64
		var f float32
		if len(ds)%2 == 0 {
			d, f = math.Float64frombits(r.Uint64()), math.Float32frombits(r.Uint32())
		} else { // few digits, exponent near the notation switch
			m := float64(r.IntN(1_000_000)) * math.Pow10(r.IntN(40)-25)
			d, f = m, float32(m)
		}
		if math.IsNaN(d) || math.IsInf(d, 0) || math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		ds, fs = append(ds, d), append(fs, f)
	}
	for i := range ds {
		if _, err := db.Exec("INSERT INTO floats VALUES (?, ?, ?)", i, ds[i], float64(fs[i])); err != nil {
			t.Fatalf("%v %v: %v", ds[i], fs[i], err)
		}
	}
	rows, err := db.Query("SELECT id, JSON_OBJECT('d', d, 'f', f) FROM floats ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	bad := 0
	for rows.Next() {
		var i int
		var got string
		if err := rows.Scan(&i, &got); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"d": %s, "f": %s}`, appendMariaDBFloat(nil, ds[i], -1), appendMariaDBFloat(nil, float64(fs[i]), 6))
		if got != want && bad < 20 {
			bad++
			t.Errorf("%v / float32 %v: MariaDB writes %s, the bridge %s", ds[i], fs[i], got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestInetUUIDTextLikeMariaDB: INET6, INET4 and UUID values from their
// binary form (what the binlog carries: TestColumnTypes), as MariaDB shows
// them.
func TestInetUUIDTextLikeMariaDB(t *testing.T) {
	db, _ := testenv.DB(t)
	if _, err := db.Exec("CREATE TABLE addrs (id INT PRIMARY KEY, a INET6, b INET4, u UUID)"); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var vals [][16]byte
	for _, s := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xfe\x01\x02\x03\x04"} {
		var v [16]byte
		copy(v[:], s)
		vals = append(vals, v)
	}
	for len(vals) < 500 {
		var v [16]byte
		for j := range v {
			if r.IntN(3) > 0 { // runs of zero groups
				v[j] = byte(r.Uint32())
			}
		}
		vals = append(vals, v)
	}
	for i, v := range vals {
		if _, err := db.Exec("INSERT INTO addrs VALUES (?, UNHEX(?), UNHEX(?), UNHEX(?))", i,
			hex.EncodeToString(v[:]), hex.EncodeToString(v[:4]), hex.EncodeToString(v[:])); err != nil {
			t.Fatalf("%x: %v", v, err)
		}
	}
	rows, err := db.Query("SELECT id, CAST(a AS BINARY(16)), CAST(b AS BINARY(4)), CAST(u AS BINARY(16)), " +
		"CAST(a AS CHAR), CAST(b AS CHAR), CAST(u AS CHAR) FROM addrs ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var ab, bb, ub []byte
		var a, b, u string
		if err := rows.Scan(&i, &ab, &bb, &ub, &a, &b, &u); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			k    kind
			in   []byte
			want string
		}{{kInet6, ab, a}, {kInet4, bb, b}, {kUUID, ub, u}} {
			col := column{name: "x", kind: c.k}
			got, err := col.encode(c.in)
			if err != nil || string(got) != `"`+c.want+`"` {
				t.Errorf("%x as kind %d: MariaDB shows %s, the bridge writes %s (%v)", c.in, c.k, c.want, got, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
