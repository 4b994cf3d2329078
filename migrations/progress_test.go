package migrations

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/testenv"
)

func TestUpProgress(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	ctx := context.Background()
	p, err := Rowgear().Provider(db)
	if err != nil {
		t.Fatal(err)
	}
	total := len(p.ListSources())
	var out bytes.Buffer
	res, err := UpProgress(ctx, db, &out, Rowgear())
	if err != nil || len(res) != total {
		t.Fatalf("UpProgress = %d results, %v; want %d", len(res), err, total)
	}
	if want := fmt.Sprintf("migrate up: %d/%d (100%%), ", total, total); !strings.HasPrefix(out.String(), want) {
		t.Errorf("progress %q, want it to start %q", out.String(), want)
	}
	out.Reset()
	if res, err := UpProgress(ctx, db, &out, Rowgear()); err != nil || len(res) != 0 {
		t.Errorf("again: %d results, %v; want nothing to do", len(res), err)
	}
}
