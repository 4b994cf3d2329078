package events

import (
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/rowmap"
)

type Status string

// Point has its own JSON form, used through json.Marshaler/Unmarshaler.
type Point struct{ X, Y int }

func (p Point) MarshalJSON() ([]byte, error) { return json.Marshal([2]int{p.X, p.Y}) }
func (p *Point) UnmarshalJSON(b []byte) error {
	var a [2]int
	err := json.Unmarshal(b, &a)
	p.X, p.Y = a[0], a[1]
	return err
}

type Audit struct {
	CreatedAt time.Time  `db:"created_at"`
	DeletedAt *time.Time `db:"deleted_at"`
}

type Article struct {
	ID       uint64          `db:"id,pk"`
	Lang     string          `db:"lang,pk"`
	Delta    int64           `db:"delta"`
	Small    int8            `db:"small"`
	Title    string          `db:"title"`
	Price    string          `db:"price"`
	Ratio    float64         `db:"ratio"`
	Weight   float32         `db:"weight"`
	Online   bool            `db:"online"`
	Status   Status          `db:"status"`
	Body     []byte          `db:"body"`
	Meta     json.RawMessage `db:"meta"`
	Born     time.Time       `db:"born,date"`
	Duration time.Duration   `db:"duration"`
	Summary  *string         `db:"summary"`
	Views    sql.NullInt64   `db:"views"`
	Note     sql.NullString  `db:"note"`
	Seen     sql.NullTime    `db:"seen"`
	Score    sql.Null[int32] `db:"score"`
	Where    Point           `db:"location"`
	Audit
	Cache    string `db:"-"`
	Internal string
}

const articleRow = `{"id":18446744073709551615,"lang":"fr","delta":-9223372036854775808,"small":-128,` +
	`"title":"Café 😀","price":"12.50","ratio":0.25,"weight":1.5,"online":1,"status":"draft",` +
	`"body":"AAEC/w==","meta":{"a":[1,2]},"born":"2000-02-29","duration":"-838:59:59.000001",` +
	`"summary":null,"views":null,"note":"n","seen":"2026-11-26 23:00:00.123456","score":7,` +
	`"location":[3,4],"created_at":"2026-11-26 23:00:00","deleted_at":null,"extra":"ignored"}`

func wantArticle() Article {
	return Article{
		ID: math.MaxUint64, Lang: "fr", Delta: math.MinInt64, Small: -128,
		Title: "Café 😀", Price: "12.50", Ratio: 0.25, Weight: 1.5, Online: true, Status: "draft",
		Body: []byte{0, 1, 2, 255}, Meta: json.RawMessage(`{"a":[1,2]}`),
		Born:     time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		Duration: -(838*time.Hour + 59*time.Minute + 59*time.Second + time.Microsecond),
		Note:     sql.NullString{String: "n", Valid: true},
		Seen:     sql.NullTime{Time: time.Date(2026, 11, 26, 23, 0, 0, 123456000, time.UTC), Valid: true},
		Score:    sql.Null[int32]{V: 7, Valid: true},
		Where:    Point{3, 4},
		Audit:    Audit{CreatedAt: time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)},
	}
}

func mustRow(t *testing.T, s string) Row {
	t.Helper()
	var r Row
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestScan(t *testing.T) {
	var got Article
	got.Cache, got.Internal = "keep", "keep"
	if err := mustRow(t, articleRow).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := wantArticle()
	want.Cache, want.Internal = "keep", "keep"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan:\n got %+v\nwant %+v", got, want)
	}
}

// RowOf writes what Scan reads: every column comes back in its wire form.
func TestRowOf(t *testing.T) {
	a := wantArticle()
	for _, src := range []any{a, &a} {
		r, err := RowOf(src)
		if err != nil {
			t.Fatal(err)
		}
		want := mustRow(t, articleRow)
		delete(want, "extra")
		if len(r) != len(want) {
			t.Errorf("RowOf: %d columns, want %d", len(r), len(want))
		}
		for k, v := range want {
			if string(r[k]) != string(v) {
				t.Errorf("RowOf %s: got %s, want %s", k, r[k], v)
			}
		}
	}
}

func TestRowOfScanRoundTrip(t *testing.T) {
	s := "summary"
	d := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	a := Article{Summary: &s, Body: []byte{}, Meta: json.RawMessage(`[ 1 ]`),
		Views: sql.NullInt64{Int64: -1, Valid: true}, Duration: 90 * time.Minute,
		Audit: Audit{CreatedAt: d, DeletedAt: &d}}
	r, err := RowOf(a)
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{"body": `""`, "meta": `[1]`, "created_at": `"2026-01-02 02:04:05.000006"`,
		"born": `"0000-00-00"`, "seen": `null`, "duration": `"01:30:00"`, "online": `0`, "score": `null`} {
		if string(r[col]) != want {
			t.Errorf("%s: %s, want %s", col, r[col], want)
		}
	}
	var b Article
	if err := r.Scan(&b); err != nil {
		t.Fatal(err)
	}
	a.Meta = json.RawMessage(`[1]`)
	a.CreatedAt, a.DeletedAt = d.UTC(), &a.CreatedAt
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", b, a)
	}
}

func TestScanZeroDates(t *testing.T) {
	var a struct {
		D  time.Time `db:"d"`
		DT time.Time `db:"dt"`
		F  time.Time `db:"f"`
	}
	a.D = time.Now()
	r := Row{"d": raw(`"0000-00-00"`), "dt": raw(`"0000-00-00 00:00:00"`), "f": raw(`"0000-00-00 00:00:00.000000"`)}
	if err := r.Scan(&a); err != nil {
		t.Fatal(err)
	}
	if !a.D.IsZero() || !a.DT.IsZero() || !a.F.IsZero() {
		t.Errorf("got %+v, want zero times", a)
	}
}

func TestScanErrors(t *testing.T) {
	tests := []struct{ col, val, msg string }{
		{"id", `-1`, "negative"},
		{"id", `18446744073709551616`, "overflows uint64"},
		{"small", `128`, "overflows int8"},
		{"delta", `-9223372036854775809`, "overflows int64"},
		{"delta", `1.5`, "want an integer, got 1.5"},
		{"delta", `1e3`, "want an integer"},
		{"delta", `"1"`, "want an integer, got string"},
		{"delta", `null`, "NULL"},
		{"title", `null`, "NULL"},
		{"title", `{}`, "want a string, got object"},
		{"weight", `1e39`, "overflows float32"},
		{"ratio", `"abc"`, "is not a float64"},
		{"ratio", `"NaN"`, "float64"},
		{"online", `"yes"`, "want an integer"},
		{"body", `"not base64!"`, "bad base64"},
		{"body", `"AAEC\n/w=="`, "line break"},
		{"body", `12`, "want a base64 string, got number"},
		{"born", `"2026-13-01"`, "DATE"},
		{"born", `"2026-11-26T23:00:00"`, "got \"2026-11-26T23:00:00\""},
		{"born", `20261126`, "want a DATE or DATETIME string"},
		{"duration", `"839:00:00"`, "TIME"},
		{"duration", `"12:60:00"`, "TIME"},
		{"duration", `"12:00"`, "TIME"},
		{"duration", `"+1:00:00"`, "TIME"},
		{"views", `"x"`, "want an integer"},
		{"location", `{"x":1}`, "cannot unmarshal"},
		{"created_at", `null`, "NULL"},
	}
	for _, tt := range tests {
		t.Run(tt.col+"="+tt.val, func(t *testing.T) {
			var a Article
			err := Row{tt.col: raw(tt.val)}.Scan(&a)
			if err == nil {
				t.Fatalf("Scan succeeded: %+v", a)
			}
			if !errors.Is(err, ErrValue) {
				t.Errorf("%v is not ErrValue", err)
			}
			for _, s := range []string{`"` + tt.col + `"`, "events.Article.", tt.msg} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestScanBool(t *testing.T) {
	for val, want := range map[string]bool{`0`: false, `1`: true, `2`: true, `-1`: true, `-0`: false,
		`true`: true, `false`: false, `100000000000000000000000`: true} {
		var a struct {
			B bool `db:"b"`
		}
		if err := (Row{"b": raw(val)}).Scan(&a); err != nil || a.B != want {
			t.Errorf("%s: got %v, %v; want %v", val, a.B, err, want)
		}
	}
}

func TestScanLooseForms(t *testing.T) {
	var a struct {
		F float64 `db:"f"`
		S string  `db:"s"`
		E string  `db:"e"`
		T string  `db:"t"`
	}
	r := Row{"f": raw(`"12.50"`), "s": raw(`18446744073709551615`), "e": raw(`"\u00e9\/"`), "t": raw(`"23:59:59.5"`)}
	if err := r.Scan(&a); err != nil {
		t.Fatal(err)
	}
	if a.F != 12.5 || a.S != "18446744073709551615" || a.E != "é/" || a.T != "23:59:59.5" {
		t.Errorf("got %+v", a)
	}
}

func TestStructErrors(t *testing.T) {
	type noTag struct{ A int }
	type unexported struct {
		//lint:ignore U1000 the field is what Columns must refuse
		a int `db:"a"`
	}
	type dup struct {
		A int `db:"a"`
		B int `db:"a"`
	}
	type badOpt struct {
		A int `db:"a,primary"`
	}
	type noName struct {
		A int `db:",pk"`
	}
	type badType struct {
		A []int `db:"a"`
	}
	type ptrPtr struct {
		A **int `db:"a"`
	}
	type Inner struct {
		A int `db:"a"`
	}
	type viaPtr struct{ *Inner }
	for _, tt := range []struct {
		v   any
		msg string
	}{
		{&unexported{}, "unexported"},
		{&dup{}, `both map to column "a"`},
		{&badOpt{}, `unknown db tag option "primary"`},
		{&noName{}, "names no column"},
		{&badType{}, "unsupported field type []int"},
		{&ptrPtr{}, "pointer to pointer"},
		{&viaPtr{}, "embedded pointer"},
		{new(int), "not a struct"},
	} {
		err := Row{"a": raw(`1`)}.Scan(tt.v)
		if !errors.Is(err, ErrStruct) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Scan(%T): %v, want ErrStruct mentioning %q", tt.v, err, tt.msg)
		}
		if _, err := RowOf(tt.v); !errors.Is(err, ErrStruct) {
			t.Errorf("RowOf(%T): %v, want ErrStruct", tt.v, err)
		}
	}
	if err := (Row{}).Scan(noTag{}); !errors.Is(err, ErrStruct) {
		t.Errorf("Scan(non-pointer): %v", err)
	}
	if err := (Row{}).Scan((*noTag)(nil)); !errors.Is(err, ErrStruct) {
		t.Errorf("Scan(nil): %v", err)
	}
	if _, err := PK(noTag{}); !errors.Is(err, ErrStruct) || !strings.Contains(err.Error(), "pk") {
		t.Errorf("PK(no pk tag): %v", err)
	}
}

func TestPK(t *testing.T) {
	a := wantArticle()
	r, err := PK(&a)
	if err != nil {
		t.Fatal(err)
	}
	want := Row{"id": raw(`18446744073709551615`), "lang": raw(`"fr"`)}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("PK: %s, want %s", r, want)
	}
	type nullPK struct {
		ID *int `db:"id,pk"`
	}
	if _, err := PK(nullPK{}); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "NULL") {
		t.Errorf("PK(NULL key): %v", err)
	}
}

func TestRowOfErrors(t *testing.T) {
	for _, tt := range []struct {
		v   any
		msg string
	}{
		{struct {
			F float64 `db:"f"`
		}{math.NaN()}, "NaN"},
		{struct {
			S string `db:"s"`
		}{"\xff"}, "invalid UTF-8"},
		{struct {
			J json.RawMessage `db:"j"`
		}{json.RawMessage(`{`)}, "invalid JSON"},
		{struct {
			T time.Time `db:"t"`
		}{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "year 10000"},
	} {
		if _, err := RowOf(tt.v); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("RowOf(%+v): %v, want ErrValue mentioning %q", tt.v, err, tt.msg)
		}
	}
}

func TestColumns(t *testing.T) {
	cols, err := rowmap.Columns(reflect.TypeFor[*Article]())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.Name)
	}
	want := "id lang delta small title price ratio weight online status body meta born duration " +
		"summary views note seen score location created_at deleted_at"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("columns %s\nwant    %s", got, want)
	}
	if !cols[0].PK || !cols[1].PK || cols[2].PK || !cols[12].Date || cols[0].Field != "ID" {
		t.Errorf("options: %+v", cols[:3])
	}
	if c := cols[len(cols)-1]; c.Field != "DeletedAt" || !reflect.DeepEqual(c.Index, []int{20, 1}) {
		t.Errorf("embedded: %+v", c)
	}
	again, _ := rowmap.Columns(reflect.TypeFor[Article]())
	if &again[0] != &cols[0] {
		t.Error("Columns is not cached")
	}
}

func BenchmarkScan(b *testing.B) {
	e, err := Decode([]byte(sampleJSON))
	if err != nil {
		b.Fatal(err)
	}
	var dst struct {
		ID        int64           `db:"id,pk"`
		Title     string          `db:"title"`
		Price     string          `db:"price"`
		CreatedAt time.Time       `db:"created_at"`
		Tags      json.RawMessage `db:"tags"`
		Body      *string         `db:"body"`
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Row.Scan(&dst); err != nil {
			b.Fatal(err)
		}
	}
}
