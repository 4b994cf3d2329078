package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/pressly/goose/v3"

	"github.com/rowgear/rowgear/internal/progress"
)

// UpProgress is Up applying the migrations one by one and reporting its
// progress to w (package progress: a redrawn line on a terminal, plain
// lines elsewhere).
func UpProgress(ctx context.Context, db *sql.DB, w io.Writer, sets ...Set) ([]*goose.MigrationResult, error) {
	provs := make([]*goose.Provider, len(sets))
	var pending int64
	for i, s := range sets {
		p, err := s.Provider(db)
		if err != nil {
			return nil, err
		}
		st, err := p.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
		}
		for _, m := range st {
			if m.State == goose.StatePending {
				pending++
			}
		}
		provs[i] = p
	}
	r := progress.New(w, "migrate up", pending)
	defer r.Done()
	var all []*goose.MigrationResult
	for i, p := range provs {
		for {
			res, err := p.UpByOne(ctx)
			if errors.Is(err, goose.ErrNoNextVersion) {
				break
			}
			if res != nil {
				all = append(all, res)
			}
			if err != nil {
				return all, fmt.Errorf("migrations %s up: %w", sets[i].Name, err)
			}
			r.Add(1)
		}
	}
	return all, nil
}
