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
	p, err := NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	total := len(p.ListSources())
	var out bytes.Buffer
	n, err := UpProgress(ctx, p, &out)
	if err != nil || n != total {
		t.Fatalf("UpProgress = %d, %v; want %d", n, err, total)
	}
	if want := fmt.Sprintf("migrate up: %d/%d (100%%), ", total, total); !strings.HasPrefix(out.String(), want) {
		t.Errorf("progress %q, want it to start %q", out.String(), want)
	}
	out.Reset()
	if n, err := UpProgress(ctx, p, &out); err != nil || n != 0 {
		t.Errorf("again: %d, %v; want nothing to do", n, err)
	}
}
