// Package replica is the snapshot tests' and bench's handler: a model whose
// every event (snapshot, insert, update, delete) upserts into or deletes
// from a replica table, so that a checksum query can compare the replica
// with its source once the events are applied.
package replica

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"github.com/rowgear/rowgear/dispatch"
)

// DDL is the column list of the source table and of its replica.
const DDL = "(id BIGINT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) NOT NULL)"

// Table is the replica of the source table items.
const Table = "items_replica"

// Counts are the handler calls, by handler.
type Counts struct {
	Snapshot, Insert, Update, Delete atomic.Int64
}

// Applied is the sum of the calls.
func (c *Counts) Applied() int64 {
	return c.Snapshot.Load() + c.Insert.Load() + c.Update.Load() + c.Delete.Load()
}

// Item is a row of items.
type Item struct {
	dispatch.Record
	ID   int64  `db:"id,pk"`
	V    int64  `db:"v"`
	Note string `db:"note"`

	counts *Counts
}

// Register registers Item as model name, counting its calls in c.
func Register(reg *dispatch.Registry, name string, c *Counts) error {
	return dispatch.Register[Item](reg, name, dispatch.Constructor(func() *Item { return &Item{counts: c} }))
}

func (it *Item) upsert(ctx context.Context) error {
	_, err := it.DB().ExecContext(ctx, "REPLACE INTO "+Table+" (id, v, note) VALUES (?, ?, ?)", it.ID, it.V, it.Note)
	return err
}

// TriggerSnapshot applies a row a snapshot read.
func (it *Item) TriggerSnapshot(ctx context.Context) error {
	it.counts.Snapshot.Add(1)
	return it.upsert(ctx)
}

// TriggerInsert applies an insert.
func (it *Item) TriggerInsert(ctx context.Context) error {
	it.counts.Insert.Add(1)
	return it.upsert(ctx)
}

// TriggerUpdate applies an update.
func (it *Item) TriggerUpdate(ctx context.Context, _ []string) error {
	it.counts.Update.Add(1)
	return it.upsert(ctx)
}

// TriggerDelete applies a delete.
func (it *Item) TriggerDelete(ctx context.Context) error {
	it.counts.Delete.Add(1)
	_, err := it.DB().ExecContext(ctx, "DELETE FROM "+Table+" WHERE id = ?", it.ID)
	return err
}

// Checksum is a table's row count and the sum of its rows' CRC32s: equal
// for two tables holding the same rows, in any physical order.
func Checksum(ctx context.Context, db *sql.DB, table string) (string, error) {
	var n, sum int64
	err := db.QueryRowContext(ctx, "SELECT COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', id, v, note))), 0) FROM "+table).Scan(&n, &sum)
	if err != nil {
		return "", fmt.Errorf("checksum of %s: %w", table, err)
	}
	return fmt.Sprintf("%d rows, crc %d", n, sum), nil
}
