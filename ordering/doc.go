// Package ordering makes row-event delivery commit-exact and ordered per
// row, for both sources, as a gearman.Handler middleware; and gives handlers
// Once, for effects applied exactly once.
//
// # What it guarantees
//
//   - A handler runs only for a committed change, and only after its
//     commit: Refresh in the handler sees the committed row. A rolled-back
//     insert, update or delete runs no handler.
//   - The events of one row (model + primary key + source) never run at
//     the same time, in any number of goroutines and worker processes, and
//     a handler never runs for an event older than one already applied to
//     its row: applied events are in commit order, per row. Different rows
//     run in parallel.
//   - Last-writer-wins, not wait-for-predecessors: an event that arrives
//     after a newer event of its row has been applied is skipped (logged at
//     debug), not run late. Events of one row are not all delivered; the
//     newest committed one is, so a handler that applies the event's row
//     image (or Refreshes) ends with the row's latest committed state.
//     Retries (the retry guard re-submits after a backoff), gearmand
//     requeueing a dead worker's job at the tail of its queue, and insert,
//     update and delete being separate functions all reorder events; none
//     of that reorders what is applied.
//   - A primary-key change is a delete of the old key followed by an insert
//     of the new one (both sources split it, when the model takes inserts
//     and deletes; otherwise it is an update ordered by its new key).
//   - Trigger events are verified: a job sent by hand through the UDF (any
//     SQL account can call gman_do_background) never runs a handler.
//
// At-least-once stays: a handler that succeeded may run again when the
// worker dies before the event's transaction commits. Writes made through
// Tx, the event's own transaction, commit with it or not at all: exactly
// once, in the row's commit order, whatever kills the worker. Once serves
// writes in a transaction of the handler's own.
//
// # How, cost and operating it
//
// docs/ordering.md: the commit gate and the outbox rows, the binlog and
// snapshot seqs, the seq table, batches, what each event costs (2 round
// trips on a pool from OpenDB), purging, privileges and moving a model
// between sources.
//
// # Wiring
//
//	odb, err := ordering.OpenDB(dsn, concurrency) // its own pool: docs/ordering.md#cost
//	…
//	o, err := ordering.New(odb, ordering.WithConfig(cfg), ordering.WithLogger(log))
//	…
//	reg.Use(o.Middleware()) // inside the retry guard: a failed event is retried
//
// db is the application database, where rowgear's migrations ran
// (migration 00010: rowgear_gate, rowgear_row_seq, rowgear_applied). A model
// in another schema (models.<Model>.schema) has its gate table there: run
// the migration in that schema too. The middleware acts on row-event
// functions (<namespace>.<Model>.insert|update|delete|snapshot) only.
//
// Per model, in gearman.yml: `models.<Model>.ordered: false` (or
// WithUnordered) skips the per-row ordering for speed; trigger events still
// pass the commit gate. Ordered is the default.
//
// # Exactly-once effects
//
// Write in the event's transaction; the orderer commits it after the
// handler returns nil, and rolls it back when the handler fails:
//
//	func (a *Article) TriggerUpdate(ctx context.Context, _ []string) error {
//		tx, ok := ordering.Tx(ctx)
//		if !ok {
//			return errors.New("article: not an ordered event")
//		}
//		_, err := tx.ExecContext(ctx, "UPDATE article_stats SET edits = edits + 1 WHERE article_id = ?", a.ID)
//		return err
//	}
//
// In a transaction of the handler's own, Once records the event id in
// rowgear_applied; it returns false when the id is there already, and the
// handler then commits nothing (a write of another connection in flight
// when a worker is killed can still land after a newer event's):
//
//	func (a *Article) TriggerUpdate(ctx context.Context, modified []string) error {
//		tx, err := a.DB().BeginTx(ctx, nil)
//		if err != nil {
//			return err
//		}
//		defer tx.Rollback()
//		if first, err := ordering.Once(ctx, tx, a.Event().ID); err != nil || !first {
//			return err
//		}
//		// … the handler's writes, in tx …
//		return tx.Commit()
//	}
//
// Effects outside the database (an HTTP call, a search index) cannot be
// made exactly-once this way: make them idempotent (keyed by the row, or by
// the event id).
package ordering
