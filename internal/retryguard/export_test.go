package retryguard

import (
	"context"
	"time"
)

// TakeDead is takeDead, for the race test of settle.
func (s *Store) TakeDead(ctx context.Context, ids []int64, resend time.Duration, submit func(Entry) error) (int, error) {
	return s.takeDead(ctx, ids, resend, submit)
}
