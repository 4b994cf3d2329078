package bridge

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/triggers"
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
// taken from the current column of the same name (triggers.Describe); without
// column names in the TABLE_MAP (binlog_row_metadata was not FULL when the
// row was written) the current schema is all there is, and is used only when
// it matches.

// loadCurrent reads schema.table's current schema; nil when the table no
// longer exists.
func loadCurrent(ctx context.Context, db *sql.DB, schema, table string) (*triggers.Table, error) {
	t, err := triggers.Describe(ctx, db, schema, table)
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

// latin1Collation reports the collation ids of latin1.
func latin1Collation(id uint64) bool {
	switch id {
	case 5, 8, 15, 31, 47, 48, 49, 94, 1029, 1032, 1039, 1055, 1071, 1072, 1073, 1118: // latin1_*, with MariaDB's NOPAD ids
		return true
	}
	return false
}

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
// schema (nil: it no longer exists).
func newMeta(tm *replication.TableMapEvent, cur *triggers.Table, epoch int) (*tableMeta, error) {
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
	enums, sets := tm.EnumStrValueMap(), tm.SetStrValueMap()
	colls := tm.CollationMap()
	esColls := tm.EnumSetCollationMap()
	for i, name := range names {
		t := binlogType(tm, i)
		c := column{name: name, kind: kString}
		var hint triggers.Column
		if cur != nil {
			hint, _ = cur.Column(name)
		}
		if fromCurrent {
			hint = cur.Columns[i]
		}
		coll, hasColl := colls[i]
		binary := hasColl && coll == binaryCollation || !hasColl && fromCurrent && strings.Contains(hint.DataType, "binary")
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
			c.kind, c.prec = kTime, int(tm.ColumnMeta[i])
		case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
			c.kind = kEnum
			vals := enums[i]
			if t == mysql.MYSQL_TYPE_SET {
				c.kind, vals = kSet, sets[i]
			}
			if vals == nil && fromCurrent {
				vals = members(hint.ColumnType)
			}
			if vals == nil {
				return nil, fmt.Errorf("%w: %s.%s column %s: the TABLE_MAP has no %s members", errFatal, m.schema, m.table, name, typeName(t))
			}
			if latin1Collation(esColls[i]) || fromCurrent && hint.Charset == "latin1" {
				vals = slices.Clone(vals)
				for j, v := range vals {
					vals[j] = string(latin1ToUTF8([]byte(v)))
				}
			}
			c.values = vals
		case mysql.MYSQL_TYPE_GEOMETRY:
			c.kind = kBinary
		case mysql.MYSQL_TYPE_STRING:
			n := fixedLength(tm.ColumnMeta[i])
			switch {
			case binary && hint.DataType == "uuid" && n == 16:
				c.kind = kUUID
			case binary && hint.DataType == "inet6" && n == 16:
				c.kind = kInet6
			case binary && hint.DataType == "inet4" && n == 4:
				c.kind = kInet4
			case binary:
				c.kind, c.fixed = kBinary, n
			}
		case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_BLOB:
			switch {
			case binary:
				c.kind = kBinary
			case t == mysql.MYSQL_TYPE_BLOB && hint.DataType == "json":
				c.kind = kJSON
			}
		}
		if c.kind == kString {
			c.latin1 = hasColl && latin1Collation(coll) || !hasColl && hint.Charset == "latin1"
		}
		m.cols = append(m.cols, c)
	}
	for _, i := range tm.PrimaryKey {
		m.pk = append(m.pk, int(i))
	}
	if len(m.pk) == 0 && cur != nil && (fromCurrent || len(tm.PrimaryKey) == 0) {
		// MariaDB logs the key with FULL metadata; take the current one by name.
		for _, k := range cur.PK {
			i := slices.IndexFunc(m.cols, func(c column) bool { return c.name == k })
			if i < 0 {
				m.pk = nil
				break
			}
			m.pk = append(m.pk, i)
		}
	}
	if len(m.pk) == 0 {
		return nil, fmt.Errorf("%w: table %s.%s has no primary key: events name their row by it", errFatal, m.schema, m.table)
	}
	return m, nil
}

// checkCurrent refuses to decode tm's rows with the current schema unless
// it has the same columns, in the same order, of the same binlog types.
func (m *tableMeta) checkCurrent(tm *replication.TableMapEvent, cur *triggers.Table) error {
	logged := make([]string, len(tm.ColumnType))
	for i := range tm.ColumnType {
		logged[i] = typeName(binlogType(tm, i))
	}
	if cur == nil {
		return fmt.Errorf("%w: %s.%s: the binlog row (%s) has no column names (binlog_row_metadata was not FULL when it was written) "+
			"and the table no longer exists: its columns are unknown", errFatal, m.schema, m.table, strings.Join(logged, ", "))
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
			errFatal, m.schema, m.table, len(logged), strings.Join(logged, ", "), len(now), strings.Join(now, ", "))
	}
	return nil
}
