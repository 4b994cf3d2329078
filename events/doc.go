// Package events defines the row-event envelope that both sources (MySQL
// triggers through the gearman UDF, and binlogbridge) publish, its JSON codec,
// and the gearman function names.
//
// # Envelope, version 1
//
//	{"v":1, "id":"…", "source":"trigger|binlog", "schema":"app", "table":"articles",
//	 "model":"Article", "op":"insert|update|delete|snapshot",
//	 "pk":{"id":42}, "row":{…}, "old":{…}, "modified":["title"],
//	 "ts":"2026-11-26T23:00:00.123456Z", "pos":"binlog.000001:1234",
//	 "seq":"17643024001:0000000004:0000001234:000000"}
//
// Fields (v, id, source, schema, table, model, op, pk, row and ts are
// required; Decode refuses anything else, see there):
//
//   - id: unique per event. Trigger source: UUID(). Binlog source:
//     deterministic from the position and the row's index in its event, so a
//     redelivered event keeps its id. It is also the gearman unique key.
//   - op: snapshot is a row a binlogbridge snapshot (backfill) read, not a
//     change: row is its image at the time of the read.
//   - row: the after image for insert and update, the before image for
//     delete, the image read for snapshot.
//   - old: the before image, for update only. Absent in events of outbox
//     triggers (below).
//   - pk: the primary-key columns of row (for delete, row is the before
//     image), in the same value forms.
//   - modified: update: the columns whose value changed (NULL-safe); insert:
//     every column of row; delete and snapshot: absent. In table column order.
//   - ts: when the change happened, RFC 3339 in UTC with microseconds.
//     Triggers: UTC_TIMESTAMP(6) at the row change. Binlog: the commit's
//     timestamp (whole seconds; the binlog keeps no more).
//   - pos: binlog source only: "file:pos" or the GTID set.
//   - seq: orders the events of one row (same model, primary key and source):
//     a later commit has a greater seq, compared as bytes. Triggers: the id
//     of the commit-gate row the trigger wrote, 20 digits (package ordering
//     verifies it). Binlog: "<history start>:<file number>:<position>:<row>",
//     11, 10, 10 and 6 digits (the history starts when binlogbridge starts
//     without a saved position, in tenths of a second, so a new binlog
//     history's events order after an old one's). Optional (triggers
//     generated before the commit gate have none).
//   - read_at: binlog source only, optional: when binlogbridge read the
//     change from the binlog, by its clock, RFC 3339 in UTC with
//     microseconds. Not deterministic (a replay reads again); package
//     latency bounds the commit time with it.
//   - read_row: true, or absent. Outbox triggers (triggers.mode: outbox)
//     write their insert and update events with read_row instead of row
//     and old; see below.
//
// # Trigger outbox events
//
// An outbox trigger writes the least it can in the writer's statement: the
// key, the op, the modified columns and, for a delete (and the delete half
// of a primary-key change), the before image. Its insert and update events
// carry "read_row": true and no row. The worker (package ordering) reads
// the committed row by primary key, in the transaction that orders the
// event and after its row's earlier events were applied, fills row and
// clears ReadRow before any handler runs. So a handler of such an event
// sees:
//
//   - row: the row as committed when the worker handled the event: this
//     change or a later one of the same row (whose own event follows, and
//     finds the same or a newer row);
//   - old: nil; modified: the columns this change modified;
//   - no call at all when the row is gone by then (deleted, or its key
//     changed): the event is dropped as overtaken, and the delete's event,
//     which carries the before image, follows.
//
// Deletes carry their before image as from any trigger. The binlog source
// always carries both images as they were at the change.
//
// # Column values
//
// Both sources write a column value in the same form, byte for byte, so an
// event decodes the same whichever source produced it (checked on a table
// with a column of every type below: triggers/testdata/coltypes.sql and
// coltypes.expected.json, for the triggers and for binlogbridge):
//
//   - NULL: null
//   - TINYINT … BIGINT, signed or UNSIGNED, MEDIUMINT, YEAR (YEAR 0000 is
//     0), BIT(1…64) as an unsigned number: a JSON number, exact to 64 bits
//     (decode with json.Number, never float64)
//   - DOUBLE: a JSON number as MariaDB writes it: the shortest digits that
//     read back to the same double, in plain notation when the decimal
//     exponent is in [-15, 14] (or every digit is left of the point, as in
//     1234567890123456.8), else d[.ddd]e[-]x without "+" (1e308, -2.5e-300,
//     0.00000015, 1.2345678901234568e17)
//   - FLOAT: the same notation with at most 6 significant digits, as MariaDB
//     shows a FLOAT (16777217 is stored 16777216 and written 16777200)
//   - DECIMAL: a string, with the column's scale ("12.50")
//   - DATE "2006-01-02"; TIME "[-]15:04:05[.ffffff]" (hours up to 838);
//     DATETIME "2006-01-02 15:04:05[.ffffff]" as stored, with as many
//     fraction digits as the column's precision; TIMESTAMP in the same form,
//     converted to UTC. The zero date, datetime and timestamp stay
//     "0000-00-00" and "0000-00-00 00:00:00[.000…]" (with the column's
//     fraction digits), never null
//   - CHAR, VARCHAR, TEXT, ENUM, SET: a string in UTF-8, whatever the
//     column's character set (latin1 is converted; CHAR loses its trailing
//     spaces as MariaDB returns it); SET as "a,c"; an invalid ENUM value as ""
//   - UUID as "6ccd780c-baba-1026-9564-5b8c656024db"; INET4 as "1.2.3.4";
//     INET6 as MariaDB writes it ("2001:db8::ff00:42:8329", "::ffff:1.2.3.4",
//     and "::" for a single zero group too): the text SELECT shows
//   - JSON: the JSON value itself, not a string, compacted
//   - BINARY(n), VARBINARY, BLOB, GEOMETRY: standard base64 (with padding,
//     no line breaks); BINARY(n) has all its n bytes
//   - generated columns, VIRTUAL and STORED, like any other column
//
// In Go a row is a Row: column values kept as raw JSON, converted to and
// from struct fields tagged `db:"col"` by Row.Scan (which documents the
// tag), RowOf and PK.
//
// # Function names
//
// <namespace>.<Model>.<op> for row events (FuncName) and
// <namespace>.<Model>.<job> for record and table jobs;
// <namespace>.<Model>.batch for a batch of a model's events (OpBatch);
// queue.<name> for the message queue. Loading gearman.yml checks the names
// it goes into (letters, digits, _ and -).
package events
