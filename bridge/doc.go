// Package bridge is binlogbridge's engine: it tails the row-based binlog of
// MySQL/MariaDB with go-mysql's replication client and republishes each committed row
// change of the configured tables as a gearman job
// <namespace>.<Model>.<op> carrying the events envelope with source
// "binlog".
//
//	b, err := bridge.New(ctx, cfg, bridge.WithVerbose(true))
//	…
//	err = b.Run(ctx) // until ctx ends: then flush, save the position, return nil
//
// # The binlog source (see also docs/guarantees.md)
//
// Which tables. The models with `source: binlog` (all models with
// --all-models), each on its table in its schema (the DSN's database
// unless the model names one), matched by exact name: `articles` never
// matches `articles_archive`. Rows of other tables are not even decoded.
// Only the model's events are published, and an update that changes none of
// the model's columns is not, as with the triggers.
//
// The server needs binlog_format=ROW, binlog_row_image=FULL (the before
// image feeds `old` and `modified`) and binlog_row_metadata=FULL (MariaDB ≥
// 10.5, MySQL ≥ 8.0.1; see Schema changes): Run refuses to start otherwise,
// saying which setting to change. The bridge's user needs REPLICATION SLAVE,
// BINLOG MONITOR (MariaDB; REPLICATION CLIENT on MySQL) and SELECT on the
// schema. binlog.server_id must be unique among the server's replicas.
//
// Events. One event per row: a RowsEvent may carry many rows, update rows
// come as [before, after] pairs. `ts` is the binlog event's timestamp
// (whole seconds), `pos` is "file:logpos" of the rows event. On MariaDB
// (binlog.position table, the default, or gtid) the id is
// "<domain>-<server>-<seq>:<row>@<history>" (GTID positions: the same on
// every server of the replication topology) and `seq` is "<history
// start>:9<GTID seq>:<row>"; on MySQL and with binlog.position file or
// file:PATH the id is "file:logpos:rowindex@server_id.history" and `seq`
// "<history start>:<file number>:<logpos>:<rowindex>" (file positions).
// Either id is the same on every replay (see Delivery) and is the gearman
// unique key; seqs are fixed width, so that byte order is commit order
// across files and histories (package ordering orders a row's events by
// it). An update that changes the primary key is published
// as a delete of the old key and an insert of the new one (ids suffixed :d
// and :i) when the model takes both; otherwise as an update. Values take
// the forms of events/doc.go, byte for byte those the triggers write
// (checked on one table of every column type, coltypes in
// triggers/testdata): DECIMAL keeps its scale, times are text, TIMESTAMP is
// in UTC, FLOAT and DOUBLE are written as MariaDB writes them, unsigned
// integers stay exact, UUID and INET4/INET6 are their text.
//
// Schema changes. Each row is decoded with the schema it was written with:
// with binlog_row_metadata=FULL every TABLE_MAP event (one precedes each
// transaction's rows) carries the table's column names, signedness,
// character sets, ENUM/SET members and primary key at that moment, and the
// bridge labels the row with those, not with today's table. A column
// dropped, reordered, renamed or added while the bridge was stopped or
// behind therefore does not mislabel older rows (TestRowsKeepTheirSchema).
// What the TABLE_MAP cannot say is taken from the current column of the
// same name: that a LONGTEXT is MariaDB's JSON (its json_valid check), and
// that a BINARY(16)/BINARY(4) is UUID, INET6 or INET4. A row of a column
// whose type changed to or from those while the bridge was behind is
// written in the form of the current type (a text that is not valid JSON
// stays a string).
//
// Rows logged without column names (written before binlog_row_metadata was
// FULL, read from an old position) are decoded with the current schema only
// if it has the same number of columns, each of a type the binlog type fits;
// otherwise each such row becomes a dead letter naming the table, the
// position, the logged types and the current columns, rather than be
// published under wrong names. A row whose value count differs from its
// TABLE_MAP, or whose value does not fit its column's type, is one too.
//
// Character sets. Text, ENUM and SET members (and `old` images) are
// converted from the column's character set, named by the collation id the
// TABLE_MAP carries (resolved with the server's own collation tables, read at
// start and again for an id not seen), to UTF-8 as the server's
// CONVERT(col USING utf8mb4) does: byte for byte what the trigger source
// publishes, for every character set MariaDB has (latin1 is cp1252 with
// 0x81 0x8D 0x8F 0x90 0x9D as C1 controls; big5, sjis, ujis, gb2312 follow
// the server's tables, not WHATWG's; a byte that starts no character is
// '?'). Binary strings stay base64. See docs/charsets-and-bad-rows.md.
//
// Bad rows never stop the stream. A row change the bridge cannot publish
// (a value no JSON string holds, such as a surrogate code unit a ucs2 or
// utf32 column can hold; a row its TABLE_MAP cannot label) is stored as a
// dead letter of its model's function in rowgear_failed_jobs (`dead
// list`, `status`): its workload is a Quarantined document with the raw
// row, the position, the event id it would have had and the reason. The
// bridge goes on with the next row and counts it
// (rowgear_bridge_events_rejected_total{outcome="dead_lettered"},
// Stats.DeadLettered). A table without a primary key cannot key its events:
// the bridge names it at start-up (and `status` does), and skips its row
// changes, counted (outcome="skipped_no_primary_key", Stats.SkippedNoKey);
// add a primary key, or publish the model with source: trigger.
//
// Snapshots (backfills). A row in rowgear_snapshots (migration 00040;
// RequestSnapshot, `bridge snapshot Model…`, or the application's own
// INSERT) asks for every current row of a model once, while writes go on:
// Netflix DBLog's watermark algorithm. The bridge reads the table in
// primary-key chunks (row constructors for composite keys, up to the last
// key at the start so a busy table still ends); before a chunk's SELECT it
// writes a low watermark to the request row, after it a high one. Reading
// the binlog, it notes the key of every row of that table changed between
// the two; at the high watermark it drops those from the chunk (their change
// is newer, and is published) and publishes the rest as op "snapshot"
// events to <namespace>.<Model>.snapshot, through the same submit queues
// and by the same key as live changes, so a row's snapshot event and its
// changes reach gearmand in binlog order. No lock is taken. Progress
// (last key, rows read, estimate, rate, ETA) is logged per chunk and saved
// in the request row once the workers handled the chunk; a restart (or a
// SIGKILL) resumes from the last saved chunk, so a chunk may be published
// twice, never skipped. A model whose live changes the triggers publish is
// snapshotted the same way (the bridge watches its table without
// publishing its changes). A table without a primary key is refused, the
// request marked failed with the reason; a row whose values do not encode
// becomes a dead letter and the snapshot goes on. With models.<Model>.snapshot:
// insert the rows go out as op insert (every column in modified) to
// <Model>.insert, for TriggerInsert; otherwise the worker gives them to the
// model's TriggerSnapshot (dispatch.Snapshotter), and refuses to start when
// gearman.yml and the Go type disagree. `bridge snapshot` refuses a model
// whose Go type has neither handler; a request inserted by hand is not
// checked, and its jobs wait in gearmand for a worker that has one (in a
// batch, with binlog.batch above 1, they end as dead letters of their own
// function instead, replayable once a worker has it). A
// snapshot event is source "binlog" with its high watermark's seq, so the
// ordering middleware orders it with the row's binlog changes (for a
// trigger-sourced model, not with its trigger events: see package
// ordering). A request's rows_per_second (SnapshotRate, `--rate`) paces
// it: before each chunk the bridge waits until the rows read so far are
// within the rate. Unpaced, the workers applying a big snapshot take every
// spare cycle, and the application's statements wait for the CPU. The
// bridge reads a chunk only once the workers handled the previous one (see
// Acknowledgement), so a snapshot goes at the workers' pace; give them
// capacity above the live change rate before snapshotting a big table, or
// the live changes wait behind the snapshot's jobs. Measured at 1,000,000
// rows under a writer, the bridge SIGKILLed twice: docs/benchmarks.md,
// section 8.
//
// Delivery: at least once, never a gap. The position (file:pos, plus the
// GTID set whenever the stream has one — MariaDB always does) is saved only
// once a worker has handled every job up to it (see Acknowledgement), at
// most once a second, and on a clean stop. It is kept in the table rowgear_binlog_position of
// the source database (one row per server_id, created if absent), or in a
// file with binlog.position: file:PATH. A restart resumes from it, so jobs
// handled after the last save are published again with the same ids.
// The history of an id (Position.History) is the start time and random
// bits of a bridge that starts without a saved position, saved with it, so
// a new binlog history (RESET MASTER, a rebuilt server) whose positions
// repeat an old one's never reuses the id of a job still queued from the
// old one, and its seq orders after the old one's; a history of GTID
// positions ends in "g". A saved position of file positions, found by a
// bridge that wants GTID positions (an older bridge's, or one saved with
// binlog.position: file), is moved to GTID positions without losing,
// skipping or renaming a change: the bridge publishes up to the end of the
// binlog it found with file positions (a change the old bridge published
// after its last save comes again under its old id and seq), waits until
// all of it was handled, saves the GTID position there under a
// new history, whose seqs order after the old one's, logs "moved to GTID
// positions", and goes on by GTID.
// When the server answers ERROR 1236 (the saved position's binlog purged or
// reset), Run returns ErrBinlogGone, one line saying how to recover; it
// does not retry.
// With nothing saved, the first run starts at the current end of the binlog
// (or --start) and saves that at once. When gearmand is down or refuses
// jobs, the submitters retry with backoff and the reader is held back (its
// handler blocks once the queues are full): nothing advances until
// gearmand is back. When MariaDB goes away the reader reconnects, and if that
// fails the bridge restarts it from the last transaction it read.
// SIGINT/SIGTERM: stop reading, wait (up to 20 s) for the jobs read to be
// handled, save, exit 0 (gearmand drops the foreground jobs of a client
// that left: the next run publishes them again).
//
// Acknowledgement. Jobs are foreground jobs: a submitter waits for
// gearmand's JOB_CREATED before its next job (so a row's jobs enter
// gearmand in commit order) and takes the worker's answer asynchronously,
// keeping up to 1,000 events per queue accepted but not handled. An event
// is handled once a worker answered its job (a batch job: all its events):
// WORK_COMPLETE, or WORK_FAIL after the worker's WORK_WARNING (rowgear's
// worker sends its error so; under its retry guard the failure is then
// stored as a retry or a dead letter, and when it cannot be stored the
// worker answers nothing and gearmand requeues the job). A job whose
// answer cannot come (gearman.ErrLostResult: the connection or gearmand
// went away; gearmand drops a lost client's foreground jobs and a killed
// gearmand with its memory queue loses them all) is submitted again with
// the same unique key, in its queue's order, with backoff while gearmand
// is away. A bare WORK_FAIL (gearmand's own -j limit, a worker of another
// kind) is resent too, and after 5 such answers stored as a dead letter of
// its function. Per-row ordering makes a resent event that was applied a
// no-op. With no worker answering, the window fills and the reader stops,
// as with gearmand down: the backlog waits in the binlog. Stats: Published
// counts events gearmand accepted, Handled events a worker answered,
// Failed those answered with WORK_FAIL, Resent jobs sent again, InFlight
// events read and not handled; the position saved is the handled one.
//
// High availability. With binlog.ha several bridges of one source (same
// binlog.server_id and database) run at once: the one holding the lease, a
// row of LeaseTable renewed every lease_ttl/3 (default ttl 3 s), publishes;
// the others stand by and take over once it expires. The active bridge
// stops publishing as soon as it cannot trust its lease (checked before
// every submit), before the server lets another take it, and every
// position save is fenced by the lease's epoch. With GTID positions
// (MariaDB's default) ids and seqs come from GTIDs, the same on every server of the
// topology, the DSN may list several hosts (the primary is used), and a
// failover that lost transactions the bridge had published is reported
// (Lost) and resumed from the new primary's history. See
// docs/high-availability.md.
//
// Order. binlog.concurrency (default 8) submitters, each with its own
// gearman connection and queue. Every row change goes to the queue chosen
// by a hash of its table and primary key, and each queue submits in binlog
// order, so the changes of one row reach gearmand in commit order; changes
// of different rows may reach it in any order. The saved position is the
// minimum over the queues: the end of the last transaction all of whose
// jobs, and all earlier ones, are handled. What a handler sees:
//
//   - gearmand queues jobs per function (<namespace>.<Model>.<op>), so an
//     insert, its update and its delete are in three different queues; and
//     with several workers (or one worker running jobs concurrently) jobs of
//     one function also run in parallel. The worker's ordering middleware
//     (package ordering) restores commit order per row: it skips an event
//     older, by `seq`, than one already applied to its row.
//   - A change can arrive twice (after a crash, a kill or a lost
//     connection); it keeps its `id`, so handlers can deduplicate on it.
//   - A primary-key change's delete and insert are queued by their own keys.
//
// Batches. With binlog.batch N above 1 (--batch, WithBatch), a submitter
// that finds events of the same model waiting in its queue behind the one
// it took sends up to N of them as one job, <namespace>.<Model>.batch,
// whose workload is a JSON array of the events' envelopes, each byte for
// byte its own job's, in binlog order (events.OpBatch). It never waits
// for a batch to fill: an event that finds the queue empty goes out alone,
// as <Model>.<op>, at once, so batches form only when gearmand is the
// bottleneck (a burst, a big transaction, a snapshot chunk, a backlog) and
// a quiet stream keeps its latency. The batch's unique key is its first
// event's id and its size. The position is saved as with single jobs: once
// a worker handled every job, batch or not, up to it (the batch job's
// answer handles all its events). A batch job
// needs a worker that mounts the model's batch function: rowgear's worker
// (dispatch.Registry.Mount) registers it beside the model's events and
// runs each event through its own function's middleware and handler, and
// package ordering gives a batch's events one transaction. Workers of
// other kinds (a PHP GearmanWorker) do not take batch jobs, which then
// wait in gearmand: keep binlog.batch at 1 (the default) for them. A batch
// holds one queue's events, and a row's events all go to one queue, so
// fewer queues make bigger batches: with batches, binlog.concurrency 2
// publishes more than a worker applies, and at 5,000 events/s made the
// ordered commit → handler p99 11 ms where 8 queues made it 168 ms
// (docs/benchmarks.md).
//
// Visibility. --verbose logs each published event (function, id, pos).
// Every binlog.stats_interval (default 10 s) one line gives the saved-able
// position, the lag in seconds (age of the oldest change not yet
// handled; when nothing is pending, of the last event read if events
// are still arriving; else 0), handled events/s, published (accepted by
// gearmand) and handled counts, in-flight events and jobs resent.
//
// Throughput. Each gearman connection has one submit in flight (a round
// trip per job): on a 2-core machine a 4-connection bridge publishes
// ≈11k jobs/s and 16 connections ≈17k jobs/s while go-mysql alone decodes
// the same binlog at ≈500-900k rows/s; gearmand is the limit, not
// decoding. Batches lift it: with binlog.batch 100 and 2 connections,
// bridge, gearmand, worker (ordering on) and MariaDB drained 22.5k
// events/s on the same 2 cores (docs/benchmarks.md). Waiting for the
// workers' answers costs one job per event about a third of its rate;
// batches hide it (docs/benchmarks.md, 2026-12-07).
package bridge
