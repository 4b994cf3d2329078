package charset

import (
	"context"
	"database/sql"
	"fmt"
)

// LoadCollations reads the server's collation ids and their character
// sets. information_schema.COLLATIONS does not list every id a TABLE_MAP
// can carry (MariaDB's utf8mb4_uca1400_ai_ci is 2304, only in
// COLLATION_CHARACTER_SET_APPLICABILITY, which MySQL has without ids), so
// both are read when the server has both.
func LoadCollations(ctx context.Context, db *sql.DB) (map[uint64]string, error) {
	m := map[uint64]string{}
	read := func(q string) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uint64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				return err
			}
			m[id] = name
		}
		return rows.Err()
	}
	if err := read("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL"); err != nil {
		return nil, fmt.Errorf("charset: collations: %w", err)
	}
	// MariaDB ≥ 10.10 only; elsewhere the column does not exist.
	_ = read("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE ID IS NOT NULL")
	return m, nil
}
