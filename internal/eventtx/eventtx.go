// Package eventtx lets rowgeartest run a handler in an event transaction
// of package ordering's, as the worker does, without ordering exporting a
// way to make one.
package eventtx

import (
	"context"
	"database/sql"
)

// With returns ctx carrying tx as the event's transaction (ordering.Tx).
// Package ordering sets it at init.
var With func(ctx context.Context, tx *sql.Tx) context.Context
