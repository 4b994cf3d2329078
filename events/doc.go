// Package events defines the row-event envelope that both sources (MySQL
// triggers through the gearman UDF, and binlogbridge) publish, its JSON codec,
// and the gearman function names.
//
// # Envelope, version 1
//
//	{"v":1, "id":"…", "source":"trigger|binlog", "schema":"app", "table":"articles",
//	 "model":"Article", "op":"insert|update|delete",
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
//   - row: the after image for insert and update, the before image for delete.
//   - old: the before image, for update only.
//   - pk: the primary-key columns of row (for delete, row is the before
//     image), in the same value forms.
//   - modified: update: the columns whose value changed (NULL-safe); insert:
//     every column of row; delete: empty. In table column order.
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
//
// # Column values
//
// Both sources write a column value in the same form, so an event decodes the
// same whichever source produced it:
//
//   - NULL: null
//   - TINYINT … BIGINT, signed or UNSIGNED, YEAR, BIT: a JSON number, exact
//     to 64 bits (decode with json.Number, never float64)
//   - FLOAT, DOUBLE: a JSON number
//   - DECIMAL: a string, with the column's scale ("12.50")
//   - DATE "2006-01-02"; TIME "[-]15:04:05[.ffffff]" (hours up to 838);
//     DATETIME "2006-01-02 15:04:05[.ffffff]" as stored, with as many
//     fraction digits as the column's precision; TIMESTAMP in the same form,
//     converted to UTC. MySQL's zero dates stay "0000-00-00[ 00:00:00]".
//   - CHAR, VARCHAR, TEXT, ENUM, SET: a string (utf8mb4)
//   - JSON: the JSON value itself, not a string
//   - BINARY, VARBINARY, BLOB: standard base64 (with padding, no line breaks)
//
// In Go a row is a Row: column values kept as raw JSON, converted to and
// from struct fields (tagged `db:"col"`) by Row.Scan, RowOf and PK.
//
// # Function names
//
// <namespace>.<Model>.<op> for row events and <namespace>.<Model>.<job> for
// record and table jobs; queue.<name> for the message queue.
package events
