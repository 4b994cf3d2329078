package sqlschema

import "fmt"

type kind int

const (
	kindUnknown   kind = iota
	kindNumber         // JSON_OBJECT writes a number
	kindBit            // number, but JSON_OBJECT would write the raw bytes
	kindDecimal        // string with the column's scale
	kindTemporal       // text as stored
	kindTimestamp      // text, converted to UTC
	kindJSON
	kindText
	kindBinary // base64
)

func kindOf(dataType string) kind {
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "float", "double", "real":
		return kindNumber
	case "bit":
		return kindBit
	case "decimal", "numeric":
		return kindDecimal
	case "date", "time", "datetime":
		return kindTemporal
	case "timestamp":
		return kindTimestamp
	case "json":
		return kindJSON
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
		"inet4", "inet6", "uuid":
		return kindText
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection":
		return kindBinary
	}
	return kindUnknown
}

// Textual reports a column whose value a trigger compares as text (text,
// binary and JSON columns), not as a number or a time.
func (c Column) Textual() bool {
	k := kindOf(c.DataType)
	return k == kindText || k == kindBinary || c.DataType == "json"
}

// ValueSQL is the SQL expression that gives JSON_OBJECT the value of
// column c, referred to by the SQL expression ref (e.g. `price` or
// NEW.`price`), in the form events documents.
func ValueSQL(ref string, c Column) (string, error) {
	switch kindOf(c.DataType) {
	case kindNumber:
		if c.DataType == "year" {
			// JSON_OBJECT writes YEAR 0 as 0000, which is no JSON number.
			return "CAST(" + ref + " AS UNSIGNED)", nil
		}
		return ref, nil
	case kindBit:
		return "CAST(" + ref + " AS UNSIGNED)", nil
	case kindDecimal, kindTemporal:
		return "CAST(" + ref + " AS CHAR)", nil
	case kindTimestamp:
		// The zero TIMESTAMP stays the zero date, as the binlog reports it.
		// It is recognised by its text: UNIX_TIMESTAMP of it is 0 in a
		// SELECT but NULL inside a trigger.
		return fmt.Sprintf("IF(CAST(%s AS CHAR) LIKE '0000-00-00%%', CAST(%s AS CHAR), "+
			"CAST(CAST(TIMESTAMP'1970-01-01 00:00:00.000000' + INTERVAL UNIX_TIMESTAMP(%s) * 1000000 MICROSECOND AS DATETIME(%d)) AS CHAR))",
			ref, ref, ref, c.Precision), nil
	case kindJSON:
		// JSON_EXTRACT's result is typed JSON, so JSON_OBJECT embeds it.
		return "JSON_EXTRACT(" + ref + ", '$')", nil
	case kindText:
		if c.DataType == "inet4" || c.DataType == "inet6" || c.DataType == "uuid" {
			return "CAST(" + ref + " AS CHAR)", nil
		}
		// utf8mb4 whatever the column's charset: JSON_OBJECT refuses a
		// latin1 column beside the envelope's ascii id ("Illegal mix of
		// collations"), as in a database created with latin1 defaults.
		return "CONVERT(" + ref + " USING utf8mb4)", nil
	case kindBinary:
		// TO_BASE64 breaks lines every 76 characters; the contract has none.
		return "REPLACE(TO_BASE64(" + ref + "), CHAR(10), '')", nil
	}
	return "", fmt.Errorf("column %s: type %s is not supported", c.Name, c.DataType)
}

// GateTable is the commit-gate table the triggers write (migration 00010),
// in the schema of the model's table.
const GateTable = "rowgear_gate"

// SeqSuffixLen is the length of what a trigger appends to the envelope it
// hashed: `, "seq": "<20 digits>"}` in place of its closing brace.
const SeqSuffixLen = len(`, "seq": "`) + 20 + len(`"}`)
