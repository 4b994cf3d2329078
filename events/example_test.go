package events_test

import (
	"fmt"
	"time"

	"github.com/rowgear/rowgear/events"
)

func Example() {
	type Article struct {
		ID    uint64 `db:"id,pk"`
		Title string `db:"title"`
		Price string `db:"price"` // DECIMAL(10,2), kept exact
	}
	a := Article{ID: 42, Title: "Hello", Price: "12.50"}
	row, _ := events.RowOf(a)
	pk, _ := events.PK(a)
	data, err := events.Encode(&events.Envelope{
		V: events.Version, ID: "7f1e0c2a-1d2b-4c3d-8e9f-0a1b2c3d4e5f",
		Source: events.SourceTrigger, Schema: "app", Table: "articles", Model: "Article",
		Op: events.OpInsert, PK: pk, Row: row, Modified: []string{"id", "title", "price"},
		TS: time.Date(2026, 11, 26, 23, 0, 0, 123456000, time.UTC),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	fmt.Println(events.FuncName("app", "Article", events.OpInsert))

	// A worker decodes the payload and fills its model.
	e, err := events.Decode(data)
	if err != nil {
		panic(err)
	}
	var got Article
	if err := e.Row.Scan(&got); err != nil {
		panic(err)
	}
	fmt.Printf("%s %s %+v\n", e.Op, e.TS.Format(time.RFC3339Nano), got)
	// Output:
	// {"v":1,"id":"7f1e0c2a-1d2b-4c3d-8e9f-0a1b2c3d4e5f","source":"trigger","schema":"app","table":"articles","model":"Article","op":"insert","pk":{"id":42},"row":{"id":42,"price":"12.50","title":"Hello"},"modified":["id","title","price"],"ts":"2026-11-26T23:00:00.123456Z"}
	// app.Article.insert
	// insert 2026-11-26T23:00:00.123456Z {ID:42 Title:Hello Price:12.50}
}
