package bridge

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// tableMeta is what encoding a table's rows needs, derived from a TABLE_MAP
// event: the schema the rows were written with.
type tableMeta struct {
	schema, table string
	cols          []column
	pk            []int

	// What it was derived from, to recognise the same TABLE_MAP again (a
	// new one precedes every transaction's rows).
	types    []byte
	meta     []uint16
	colNames [][]byte
	epoch    int // current-schema epoch of the hints used
}

// same reports whether tm describes the table m was built from.
func (m *tableMeta) same(tm *replication.TableMapEvent, epoch int) bool {
	return m.epoch == epoch && string(tm.Schema) == m.schema && string(tm.Table) == m.table &&
		bytes.Equal(tm.ColumnType, m.types) && slices.Equal(tm.ColumnMeta, m.meta) &&
		slices.EqualFunc(tm.ColumnName, m.colNames, bytes.Equal)
}

// The TABLE_MAP lacks what MariaDB does not log: a JSON column is a
// LONGTEXT there, UUID/INET6/INET4 are BINARY(16)/BINARY(4). Those types are
// taken from the current column of the same name (sqlschema.Describe); without
// column names in the TABLE_MAP (binlog_row_metadata was not FULL when the
// row was written) the current schema is all there is, and is used only when
// it matches.

// loadCurrent reads schema.table's current schema; nil when the table no
// longer exists.
func loadCurrent(ctx context.Context, db *sql.DB, schema, table string) (*sqlschema.Table, error) {
	t, err := sqlschema.Describe(ctx, db, schema, table)
	if err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	return t, nil
}

// binlogType is a TABLE_MAP column's type as the server means it: ENUM and
// SET are logged as STRING with the real type in the metadata.
func binlogType(tm *replication.TableMapEvent, i int) byte {
	t := tm.ColumnType[i]
	if t == mysql.MYSQL_TYPE_STRING {
		if rt := byte(tm.ColumnMeta[i] >> 8); rt == mysql.MYSQL_TYPE_ENUM || rt == mysql.MYSQL_TYPE_SET {
			return rt
		}
	}
	return t
}

// fixedLength is the byte length of a CHAR/BINARY column (go-mysql's rule
// for lengths past 255).
func fixedLength(meta uint16) int {
	if meta < 256 {
		return int(meta)
	}
	b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
	if b0&0x30 != 0x30 {
		return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return int(b1)
}

// binaryCollation is the collation id of the binary character set.
const binaryCollation = 63

// charsetOf resolves a collation id of a TABLE_MAP to its character set's
// converter (the handler loads the server's ids; see charset.LoadCollations).
type charsetOf func(collation uint64) (*charset.Charset, error)

// typeName names a binlog column type in errors.
func typeName(t byte) string {
	switch t {
	case mysql.MYSQL_TYPE_TINY:
		return "TINYINT"
	case mysql.MYSQL_TYPE_SHORT:
		return "SMALLINT"
	case mysql.MYSQL_TYPE_INT24:
		return "MEDIUMINT"
	case mysql.MYSQL_TYPE_LONG:
		return "INT"
	case mysql.MYSQL_TYPE_LONGLONG:
		return "BIGINT"
	case mysql.MYSQL_TYPE_FLOAT:
		return "FLOAT"
	case mysql.MYSQL_TYPE_DOUBLE:
		return "DOUBLE"
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return "DECIMAL"
	case mysql.MYSQL_TYPE_YEAR:
		return "YEAR"
	case mysql.MYSQL_TYPE_BIT:
		return "BIT"
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return "DATE"
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return "TIME"
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return "DATETIME"
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return "TIMESTAMP"
	case mysql.MYSQL_TYPE_ENUM:
		return "ENUM"
	case mysql.MYSQL_TYPE_SET:
		return "SET"
	case mysql.MYSQL_TYPE_STRING:
		return "CHAR/BINARY"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		return "VARCHAR/VARBINARY"
	case mysql.MYSQL_TYPE_BLOB:
		return "TEXT/BLOB"
	case mysql.MYSQL_TYPE_JSON:
		return "JSON"
	case mysql.MYSQL_TYPE_GEOMETRY:
		return "GEOMETRY"
	}
	return fmt.Sprintf("type %d", t)
}

// fits reports whether a current column of information_schema DATA_TYPE dt
// can be the column the binlog logged with type t.
func fits(dt string, t byte) bool {
	want := map[string][]byte{
		"tinyint": {mysql.MYSQL_TYPE_TINY}, "smallint": {mysql.MYSQL_TYPE_SHORT},
		"mediumint": {mysql.MYSQL_TYPE_INT24}, "int": {mysql.MYSQL_TYPE_LONG}, "integer": {mysql.MYSQL_TYPE_LONG},
		"bigint": {mysql.MYSQL_TYPE_LONGLONG}, "float": {mysql.MYSQL_TYPE_FLOAT},
		"double": {mysql.MYSQL_TYPE_DOUBLE}, "real": {mysql.MYSQL_TYPE_DOUBLE},
		"decimal": {mysql.MYSQL_TYPE_NEWDECIMAL}, "numeric": {mysql.MYSQL_TYPE_NEWDECIMAL},
		"year": {mysql.MYSQL_TYPE_YEAR}, "bit": {mysql.MYSQL_TYPE_BIT},
		"date":      {mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE},
		"time":      {mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2},
		"datetime":  {mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2},
		"timestamp": {mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2},
		"enum":      {mysql.MYSQL_TYPE_ENUM}, "set": {mysql.MYSQL_TYPE_SET},
		"char": {mysql.MYSQL_TYPE_STRING}, "binary": {mysql.MYSQL_TYPE_STRING},
		"uuid": {mysql.MYSQL_TYPE_STRING}, "inet4": {mysql.MYSQL_TYPE_STRING}, "inet6": {mysql.MYSQL_TYPE_STRING},
		"varchar":   {mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING},
		"varbinary": {mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING},
		"json":      {mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_JSON},
	}[dt]
	if want == nil {
		switch {
		case strings.HasSuffix(dt, "text"), strings.HasSuffix(dt, "blob"):
			want = []byte{mysql.MYSQL_TYPE_BLOB}
		default: // geometry types
			want = []byte{mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_BLOB}
		}
	}
	return slices.Contains(want, t)
}

// newMeta derives the metadata of tm's rows. cur is the table's current
// schema (nil: it no longer exists); csOf resolves the TABLE_MAP's
// collation ids.
func newMeta(tm *replication.TableMapEvent, cur *sqlschema.Table, epoch int, csOf charsetOf) (*tableMeta, error) {
	m := &tableMeta{schema: string(tm.Schema), table: string(tm.Table), types: tm.ColumnType,
		meta: tm.ColumnMeta, colNames: tm.ColumnName, epoch: epoch}
	names := tm.ColumnNameString()
	fromCurrent := len(names) == 0
	if fromCurrent {
		// No column names: binlog_row_metadata was MINIMAL when this row
		// was written. Decode with the current schema only if it is, column
		// for column, the one the TABLE_MAP describes.
		if err := m.checkCurrent(tm, cur); err != nil {
			return nil, err
		}
		for _, c := range cur.Columns {
			names = append(names, c.Name)
		}
	}
	d := &deriver{tm: tm, cur: cur, fromCurrent: fromCurrent, csOf: csOf, colls: tm.CollationMap(),
		esColls: tm.EnumSetCollationMap(), enums: tm.EnumStrValueMap(), sets: tm.SetStrValueMap()}
	for i, name := range names {
		c, err := d.column(i, name)
		if errors.Is(err, errTransient) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s.%s column %s: %w", errPoison, m.schema, m.table, name, err)
		}
		m.cols = append(m.cols, c)
	}
	m.pk = d.primaryKey(m.cols)
	if len(m.pk) == 0 {
		return nil, fmt.Errorf("%w: table %s.%s has no primary key: events name their row by it", errNoKey, m.schema, m.table)
	}
	return m, nil
}

// deriver derives the columns of one TABLE_MAP.
type deriver struct {
	tm             *replication.TableMapEvent
	cur            *sqlschema.Table
	fromCurrent    bool // no column names logged: the current schema labels the row
	csOf           charsetOf
	colls, esColls map[int]uint64
	enums, sets    map[int][]string
}

// hint is the current column that tells what the TABLE_MAP cannot.
func (d *deriver) hint(i int, name string) sqlschema.Column {
	if d.fromCurrent {
		return d.cur.Columns[i]
	}
	if d.cur != nil {
		c, _ := d.cur.Column(name)
		return c
	}
	return sqlschema.Column{}
}

// column derives column i.
func (d *deriver) column(i int, name string) (column, error) {
	t := binlogType(d.tm, i)
	c := column{name: name, kind: kString}
	hint := d.hint(i, name)
	switch t {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_YEAR:
		c.kind = kNumber
	case mysql.MYSQL_TYPE_FLOAT:
		c.kind = kFloat
	case mysql.MYSQL_TYPE_DOUBLE:
		c.kind = kDouble
	case mysql.MYSQL_TYPE_BIT:
		c.kind = kBit
	case mysql.MYSQL_TYPE_JSON:
		c.kind = kJSON
	case mysql.MYSQL_TYPE_TIME2:
		c.kind, c.prec = kTime, int(d.tm.ColumnMeta[i])
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return d.enumSet(i, t, c, hint)
	case mysql.MYSQL_TYPE_GEOMETRY:
		c.kind = kBinary
	case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_BLOB:
		return d.text(i, t, c, hint)
	}
	return c, nil
}

// charset is the converter of column i's text: from its collation in the
// TABLE_MAP, else from the current column. nil: utf8mb4 (the fast path);
// binary is reported by the caller's own check.
func (d *deriver) charset(coll uint64, hasColl bool, hint sqlschema.Column) (*charset.Charset, error) {
	if hasColl {
		return d.csOf(coll)
	}
	if hint.Charset == "" || hint.Charset == "utf8mb4" {
		return nil, nil
	}
	return charset.Get(hint.Charset)
}

// enumSet derives an ENUM or SET column: its members, converted from the
// column's character set once here.
func (d *deriver) enumSet(i int, t byte, c column, hint sqlschema.Column) (column, error) {
	c.kind, c.values = kEnum, d.enums[i]
	if t == mysql.MYSQL_TYPE_SET {
		c.kind, c.values = kSet, d.sets[i]
	}
	if c.values == nil && d.fromCurrent {
		c.values = members(hint.ColumnType)
	}
	if c.values == nil {
		return c, fmt.Errorf("the TABLE_MAP has no %s members", typeName(t))
	}
	coll, hasColl := d.esColls[i]
	cs, err := d.charset(coll, hasColl, hint)
	if err != nil || cs == nil || cs.Name() == "utf8mb4" {
		return c, err
	}
	vals := make([]string, len(c.values))
	for j, v := range c.values {
		b, err := cs.Append(nil, []byte(v))
		if err != nil {
			return c, fmt.Errorf("member %d: %w", j+1, err)
		}
		vals[j] = string(b)
	}
	c.values = vals
	return c, nil
}

// text derives a CHAR/VARCHAR/TEXT column or its binary kin (BINARY,
// VARBINARY, BLOB; and MariaDB's UUID, INET4, INET6, JSON, which the
// TABLE_MAP logs as those).
func (d *deriver) text(i int, t byte, c column, hint sqlschema.Column) (column, error) {
	coll, hasColl := d.colls[i]
	binary := hasColl && coll == binaryCollation || !hasColl && d.fromCurrent && strings.Contains(hint.DataType, "binary")
	if t == mysql.MYSQL_TYPE_STRING && binary {
		n := fixedLength(d.tm.ColumnMeta[i])
		switch {
		case hint.DataType == "uuid" && n == 16:
			c.kind = kUUID
		case hint.DataType == "inet6" && n == 16:
			c.kind = kInet6
		case hint.DataType == "inet4" && n == 4:
			c.kind = kInet4
		default:
			c.kind, c.fixed = kBinary, n
		}
		return c, nil
	}
	switch {
	case binary:
		c.kind = kBinary
		return c, nil
	case t == mysql.MYSQL_TYPE_BLOB && hint.DataType == "json":
		c.kind = kJSON
		return c, nil
	}
	cs, err := d.charset(coll, hasColl, hint)
	if err == nil && cs != nil && cs.Name() != "utf8mb4" {
		c.cs = cs
	}
	return c, err
}

// primaryKey is the key's column indexes: logged with FULL metadata, else
// the current key's columns by name.
func (d *deriver) primaryKey(cols []column) []int {
	var pk []int
	for _, i := range d.tm.PrimaryKey {
		pk = append(pk, int(i))
	}
	if len(pk) > 0 || d.cur == nil || !d.fromCurrent && len(d.tm.PrimaryKey) != 0 {
		return pk
	}
	for _, k := range d.cur.PK {
		i := slices.IndexFunc(cols, func(c column) bool { return c.name == k })
		if i < 0 {
			return nil
		}
		pk = append(pk, i)
	}
	return pk
}

// checkCurrent refuses to decode tm's rows with the current schema unless
// it has the same columns, in the same order, of the same binlog types.
func (m *tableMeta) checkCurrent(tm *replication.TableMapEvent, cur *sqlschema.Table) error {
	logged := make([]string, len(tm.ColumnType))
	for i := range tm.ColumnType {
		logged[i] = typeName(binlogType(tm, i))
	}
	if cur == nil {
		return fmt.Errorf("%w: %s.%s: the binlog row (%s) has no column names (binlog_row_metadata was not FULL when it was written) "+
			"and the table no longer exists: its columns are unknown", errPoison, m.schema, m.table, strings.Join(logged, ", "))
	}
	var now []string
	ok := len(cur.Columns) == len(tm.ColumnType)
	for i, c := range cur.Columns {
		now = append(now, c.Name+" "+strings.ToUpper(c.DataType))
		ok = ok && i < len(tm.ColumnType) && fits(c.DataType, binlogType(tm, i))
	}
	if !ok {
		return fmt.Errorf("%w: %s.%s: the binlog row has %d columns (%s) and no column names (binlog_row_metadata was not FULL when it was written), "+
			"but the table now has %d (%s): it was written before a schema change and cannot be labelled safely. "+
			"Set binlog_row_metadata=FULL, and start the bridge past this event (--start) after replaying what it missed",
			errPoison, m.schema, m.table, len(logged), strings.Join(logged, ", "), len(now), strings.Join(now, ", "))
	}
	return nil
}
