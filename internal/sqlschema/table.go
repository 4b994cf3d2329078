package sqlschema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Table is the part of a live table's schema the generator needs.
type Table struct {
	Schema  string
	Name    string
	Columns []Column // in table order
	PK      []string // primary-key column names, in key order
}

// Column is one column of a Table.
type Column struct {
	Name string
	// DataType is information_schema's DATA_TYPE ("int", "datetime", …),
	// except that a MariaDB JSON column (a LONGTEXT with a json_valid
	// check) is "json", as it is on MySQL.
	DataType string
	// Unsigned is set for integer columns declared UNSIGNED.
	Unsigned bool
	// Precision is the fraction-digit count of TIME, DATETIME, TIMESTAMP.
	Precision int
	// ColumnType is information_schema's COLUMN_TYPE ("enum('a','b')",
	// "int(10) unsigned", …).
	ColumnType string
	// Charset is the character set of a text column, "" for others.
	Charset string
}

// Column returns the named column, or false.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// LoadTable reads a table's columns and primary key from information_schema.
// An empty schema means the connection's current database. A table without a
// primary key is an error: events identify their row by it.
func LoadTable(ctx context.Context, db *sql.DB, schema, table string) (*Table, error) {
	t, err := Describe(ctx, db, schema, table)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("table %s.%s does not exist", schema, table)
	}
	if len(t.PK) == 0 {
		return nil, fmt.Errorf("table %s.%s has no primary key: row events need one to name their row", t.Schema, table)
	}
	return t, nil
}

// Describe is LoadTable without its checks: a table that does not exist
// gives nil and no error, a table without primary key an empty PK.
func Describe(ctx context.Context, db *sql.DB, schema, table string) (*Table, error) {
	if schema == "" {
		if err := db.QueryRowContext(ctx, "SELECT IFNULL(DATABASE(), '')").Scan(&schema); err != nil {
			return nil, fmt.Errorf("current database: %w", err)
		}
		if schema == "" {
			return nil, fmt.Errorf("table %s: no schema given and the connection has no current database", table)
		}
	}
	t := &Table{Schema: schema, Name: table}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(DATETIME_PRECISION, 0),
		IFNULL(CHARACTER_SET_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", schema, table, err)
	}
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Precision, &c.Charset); err != nil {
			rows.Close()
			return nil, fmt.Errorf("columns of %s.%s: %w", schema, table, err)
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
		t.Columns = append(t.Columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", schema, table, err)
	}
	if len(t.Columns) == 0 {
		return nil, nil
	}

	t.PK, err = queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("primary key of %s.%s: %w", schema, table, err)
	}

	// MariaDB's JSON is an alias of LONGTEXT plus a column check
	// json_valid(`c`); the check is the only trace of it in the schema.
	// (MySQL has no such table here before 8.0.16, nor needs one: it says "json".)
	checks, err := queryStrings(ctx, db, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, schema, table)
	if err != nil && !isUnknownTable(err) {
		return nil, fmt.Errorf("checks of %s.%s: %w", schema, table, err)
	}
	for i, c := range t.Columns {
		if c.DataType != "longtext" {
			continue
		}
		for _, chk := range checks {
			if strings.EqualFold(strings.TrimSpace(chk), "json_valid("+QuoteIdent(c.Name)+")") {
				t.Columns[i].DataType = "json"
			}
		}
	}
	return t, nil
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// isUnknownTable reports a missing information_schema table (old MySQL).
func isUnknownTable(err error) bool {
	return strings.Contains(err.Error(), "Error 1109") || strings.Contains(err.Error(), "Unknown table")
}
