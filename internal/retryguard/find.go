package retryguard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Filter selects dead letters for Find, FindIDs and an operator's console.
// Zero fields select everything.
type Filter struct {
	Function string    // exact function name
	Model    string    // the model part of <namespace>.<Model>.<op>
	Error    string    // text the stored errors contain (case-insensitive)
	Since    time.Time // last updated at or after
	Until    time.Time // last updated before
}

func (f Filter) where() (string, []any) {
	w := []string{"state = 'dead'"}
	var args []any
	if f.Function != "" {
		w = append(w, "function = ?")
		args = append(args, f.Function)
	}
	if f.Model != "" {
		w = append(w, "function LIKE ?")
		args = append(args, "%."+likeEscape(f.Model)+".%")
	}
	if f.Error != "" {
		w = append(w, "LOWER(errors) LIKE ?") // the table's collation is binary
		args = append(args, "%"+likeEscape(strings.ToLower(f.Error))+"%")
	}
	if !f.Since.IsZero() {
		w = append(w, "updated_at >= ?")
		args = append(args, f.Since.UTC().Format("2006-01-02 15:04:05.999999"))
	}
	if !f.Until.IsZero() {
		w = append(w, "updated_at < ?")
		args = append(args, f.Until.UTC().Format("2006-01-02 15:04:05.999999"))
	}
	return strings.Join(w, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

// Find returns the dead letters f selects, newest first, at most limit of
// them from offset, and how many f selects in all.
func (s *Store) Find(ctx context.Context, f Filter, offset, limit int) ([]Entry, int, error) {
	where, args := f.where()
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rowgear_failed_jobs WHERE "+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("retry: find: %w", err)
	}
	// The page's ids first, from the (state, function) index where the
	// filter allows it; then only their rows, payloads and all.
	rows, err := s.db.QueryContext(ctx, "SELECT "+entryCols+" FROM rowgear_failed_jobs JOIN (SELECT id AS page_id FROM rowgear_failed_jobs WHERE "+where+
		fmt.Sprintf(" ORDER BY id DESC LIMIT %d OFFSET %d) AS page ON id = page_id ORDER BY id DESC", max(limit, 0), max(offset, 0)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("retry: find: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, total, rows.Err()
}

// Get returns the dead letter id, or ErrNoEntry.
func (s *Store) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanEntry(s.db.QueryRowContext(ctx, "SELECT "+entryCols+" FROM rowgear_failed_jobs WHERE state = 'dead' AND id = ?", id))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return e, fmt.Errorf("%w: %d", ErrNoEntry, id)
		}
		return e, fmt.Errorf("retry: get %d: %w", id, err)
	}
	return e, nil
}

// FindIDs returns the ids of the dead letters f selects, oldest first.
func (s *Store) FindIDs(ctx context.Context, f Filter) ([]int64, error) {
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM rowgear_failed_jobs WHERE "+where+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("retry: find: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Delete deletes the dead letters ids (a purge of a chosen set); it returns
// how many it deleted.
func (s *Store) Delete(ctx context.Context, ids ...int64) (int64, error) {
	var n int64
	for len(ids) > 0 {
		part := ids[:min(len(ids), 1000)]
		ids = ids[len(part):]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		res, err := s.db.ExecContext(ctx, "DELETE FROM rowgear_failed_jobs WHERE state = 'dead' AND id IN (?"+strings.Repeat(", ?", len(part)-1)+")", args...)
		if err != nil {
			return n, fmt.Errorf("retry: delete: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}
