// Package bridge is binlogbridge's engine: it tails the row-based binlog of
// MySQL/MariaDB with go-mysql's replication client and republishes each
// committed row change of the configured tables as a gearman job
// <namespace>.<Model>.<op> carrying the events envelope with source
// "binlog".
//
//	b, err := bridge.New(ctx, cfg, bridge.WithVerbose(true))
//	…
//	err = b.Run(ctx) // until ctx ends: then flush, save the position, return nil
//
// In short (docs/binlog-bridge.md is the operating manual):
//
//   - Tables: the models with source: binlog, matched by exact name; the
//     server needs binlog_format=ROW, binlog_row_image=FULL and
//     binlog_row_metadata=FULL, and Run says which setting is missing.
//   - Events: one per row, labelled with the schema the row was written
//     with (its TABLE_MAP), text converted to UTF-8 as the server's
//     CONVERT(… USING utf8mb4) does; ids and seqs from GTIDs on MariaDB,
//     the same on every server.
//   - Bad rows never stop the stream: a row that cannot be published is a
//     dead letter of its model's function (Quarantined), counted.
//   - Delivery: at least once, never a gap. Jobs are foreground jobs; the
//     position is saved only past events a worker handled, so a gearmand or
//     bridge that dies loses nothing: the next run, or the resend of a
//     lost job, publishes it again under the same id.
//   - Order: a row's changes reach gearmand in commit order (one submit
//     queue per hash of table and key); package ordering restores it per
//     row in the worker.
//   - Snapshots (RequestSnapshot): every current row of a model, read in
//     key chunks beside live changes without a lock (DBLog's watermarks).
//   - High availability (WithHA, binlog.ha): several bridges, one lease,
//     epoch-fenced positions (docs/high-availability.md).
//   - Batches (WithBatch, binlog.batch): consecutive events of one model
//     in one <Model>.batch job when gearmand is the bottleneck.
package bridge
