package ordering_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/ordering"
)

// The middleware wraps every handler; jobs that are not row events (here a
// plain function) pass through untouched, without touching the database.
func ExampleOrderer_Middleware() {
	db, _ := sql.Open("mysql", "app:secret@tcp(127.0.0.1:3306)/app") // opens no connection yet
	defer db.Close()
	o, err := ordering.New(db, ordering.WithUnordered("AuditLog"))
	if err != nil {
		fmt.Println(err)
		return
	}
	reverse := func(_ context.Context, j *gearman.Job) (any, error) {
		r := []rune(string(j.Workload))
		for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
			r[i], r[k] = r[k], r[i]
		}
		return string(r), nil
	}
	h := o.Middleware()(reverse)
	out, err := h(context.Background(), &gearman.Job{Function: "reverse", Workload: []byte("Hello!")})
	fmt.Println(out, err)

	_, err = ordering.New(db, ordering.WithUnordered(""))
	fmt.Println(errors.Is(err, ordering.ErrOption))
	// Output:
	// !olleH <nil>
	// true
}
