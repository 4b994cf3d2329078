package retryguard

import (
	"context"
	"fmt"
)

// CountDead returns how many dead letters each function has; functions
// with none are absent.
func (s *Store) CountDead(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT function, COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead' GROUP BY function")
	if err != nil {
		return nil, fmt.Errorf("retry: count dead letters: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var fn string
		var n int64
		if err := rows.Scan(&fn, &n); err != nil {
			return nil, fmt.Errorf("retry: count dead letters: %w", err)
		}
		out[fn] = n
	}
	return out, rows.Err()
}
