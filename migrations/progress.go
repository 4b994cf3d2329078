package migrations

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pressly/goose/v3"

	"github.com/rowgear/rowgear/progress"
)

// UpProgress applies p's pending migrations one by one, reporting progress
// to w (package progress: a redrawn line on a terminal, plain lines
// elsewhere), and returns how many it applied.
func UpProgress(ctx context.Context, p *goose.Provider, w io.Writer) (int, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	var pending int64
	for _, s := range st {
		if s.State == goose.StatePending {
			pending++
		}
	}
	r := progress.New(w, "migrate up", pending)
	defer r.Done()
	n := 0
	for {
		if _, err := p.UpByOne(ctx); err != nil {
			if errors.Is(err, goose.ErrNoNextVersion) {
				return n, nil
			}
			return n, fmt.Errorf("migrations: %w", err)
		}
		n++
		r.Add(1)
	}
}
