// Package retry is what an application's handler says about a failure.
//
// rowgear keeps failed jobs from being lost: gearmand forgets a background
// job once its worker answers WORK_FAIL, and requeues it forever when a
// worker dies holding it. So rowgear's worker wraps each handler: a
// failure is written to the database (rowgear_failed_jobs) with its error
// history and re-submitted after an exponential backoff, as gearman.yml's
// retry: section sets per function; after the last attempt it lands in the
// dead-letter table, where `app dead list` and the console show it and
// `app dead retry` re-submits it; a job that keeps killing the worker
// process is caught by a crash journal and ends there too. A handler's
// error that retrying cannot fix (a record that is invalid for good, a
// payload that never decodes) should skip the attempts: wrap it with
// Permanent.
package retry

import (
	"errors"
	"fmt"
)

// ErrPermanent marks an error that retrying cannot fix: the job goes
// straight to the dead-letter table.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that it matches ErrPermanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }
