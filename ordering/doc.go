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
// worker dies before the event's transaction commits. Use Once for effects
// that must not be applied twice.
//
// # How
//
// Trigger source (the commit gate). The generated trigger inserts a row in
// rowgear_gate inside the writer's transaction: the SHA-256 of the envelope
// it is about to send, whose auto-increment id it appends to the envelope as
// seq. The worker, before the handler, runs DELETE … RETURNING digest on
// that id in a transaction of its own. InnoDB makes that wait until the
// writer's transaction ends (bounded by innodb_lock_wait_timeout, 50 s by
// default: a writer holding its transaction longer makes the job fail and
// be retried). While it waits, the event holds one of the worker's
// --concurrency slots: long write transactions want more slots. Row there: committed; its digest must match the payload, or
// the job fails with ErrForged (permanent: it ends as a dead letter, for an
// operator to see). Row absent: rolled back, or applied already; the event
// is dropped (logged at debug). A failing handler rolls the DELETE back, so
// the retry finds the gate row again. Writers of one row hold its lock from
// their trigger to their commit, so the gate ids of one row are in commit
// order.
//
// Outbox rows (triggers.mode: outbox, the default) hold the payload itself
// instead of its digest: the relay (internal/outbox) sends a row only once
// it is committed, with its id as seq, and here the job must carry exactly
// the row's payload. A row still there when its resend time comes is sent
// again; the copy that comes second finds no row and is dropped. Hold keeps
// the relay off a row while the retry guard retries its event, and parks
// it (relay_after NULL) once the event is a dead letter, so that only a
// replay sends it again.
//
// Binlog source. Only committed changes reach the binlog, in commit order;
// seq is the event's position, "<file number>:<position>:<row>".
//
// Snapshots. A row a binlogbridge snapshot read (op snapshot, or op insert
// with models.<Model>.snapshot: insert) has source binlog and the seq of
// its chunk's high watermark: it is ordered with the row's binlog changes
// like any of them (a change logged after the watermark wins, one logged
// before it was already in the row read), and passes no gate, whatever
// the model's live source. For a model whose live changes the triggers
// publish, the row's trigger events and its snapshot event are of two
// sources, so not ordered against each other: a snapshot event may be
// applied after a newer trigger event of its row. Its handler should then
// Refresh (read the row as it is now) rather than apply the image.
//
// Ordering. rowgear_row_seq holds the last applied seq of each row. The
// worker's transaction sets it to the event's seq when the event is newer
// (UPDATE … WHERE seq < ?, which takes the row's lock), runs the handler
// while holding that lock, and commits. An event that is not newer is
// skipped. A failing handler rolls the seq back.
//
// Batches. The events of a batch job (<Model>.batch, binlogbridge's
// binlog.batch) share one transaction: its first round trip locks the
// seq rows of all its events' rows, in key order (INSERT … ON DUPLICATE
// KEY UPDATE, which also creates a new row's), and reads their seqs; each
// event then runs, in the batch's order, through its own function's chain
// and here is skipped when not newer than its row's seq, or handled; the
// second round trip writes the seqs of the events whose handler succeeded,
// and commits. A failed event's seq is not written: the retry guard
// retries it alone, as any failed event. A worker that dies in a batch
// leaves it uncommitted: gearmand hands the batch out again and the
// handlers that had run run again (at least once, as for one event).
// Batches sharing a row wait for each other. Trigger events and unordered
// models in a batch take the one-event path.
//
// # Wiring
//
//	odb, err := ordering.OpenDB(dsn, concurrency) // its own pool, see Cost
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
// Cost. Each event is a small transaction in the worker. On a pool from
// OpenDB (what the rowgear worker uses) it takes 2 round trips: one
// multi-statement that begins it (READ COMMITTED), deletes the gate row
// and claims the row's seq, and the commit after the handler; the first
// event of a row takes one more (its INSERT). On any other *sql.DB each
// statement is a round trip of its own (and a prepared statement, 2 round
// trips, unless the DSN has interpolateParams): 5 to 7 per event. What is
// left is the server's work: the gate's DELETE and the seq's UPDATE are
// writes, binlogged, ≈100–150 µs each on the benchmark machine; see
// docs/benchmarks.md (section 5). A batch job pays 2 round trips and 4
// statements for all its events: with batches of 100, the worker ran
// 26.9k ordered events/s at 1 job at once (section 4).
//
// # Exactly-once effects
//
// Once records the event id in rowgear_applied in the handler's own
// transaction; it returns false when the id is there already, and the
// handler then commits nothing:
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
//
// # Operating it
//
//   - Lost jobs of strict and lenient triggers leave gate rows behind: a
//     lenient trigger whose submit failed, a gearmand that lost its memory
//     queue (outbox rows are sent again instead). Purge deletes those gate rows,
//     parked outbox rows (dead letters) among them,
//     and Once records older than an age (run it daily with, say, 30 days;
//     longer than you keep dead letters you may replay: a trigger event
//     whose gate row was purged is dropped as rolled back).
//   - rowgear_row_seq keeps one row per row ever seen, deleted rows
//     included (so that a late event cannot resurrect them).
//   - Moving a model from one source to the other starts its rows' order
//     afresh: events of the two sources are not ordered against each other.
//   - Triggers generated before the commit gate send events without seq:
//     they fail with ErrNoSeq (kept as dead letters). Regenerate the
//     triggers (dbworker triggers generate) and migrate.
//   - Dropping a model's schema while its trigger events are in flight
//     drops its gate table with it: those events fail with ErrGateGone,
//     permanent, and are kept as dead letters at once (`dead list`), never
//     retried against a table that is gone. Replay them once the schema is
//     back (their gate rows went with it: they are then dropped as rolled
//     back), or purge them. Stop the application's writes to a schema
//     before dropping it: a statement that opens its table after the gate
//     table went, and before the table itself goes, is refused by the
//     server (ERROR 1146 on rowgear_gate, from the trigger).
//   - Privileges: the trigger's definer and the worker need INSERT, SELECT
//     and DELETE on rowgear_gate; application accounts should have none (an
//     account that can write rowgear_gate can forge trigger events).
package ordering
