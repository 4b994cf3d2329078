package sqlschema

import (
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// QuoteIdent quotes a MySQL identifier, doubling embedded backquotes.
func QuoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// QuoteString renders s as an SQL string literal that means the same under
// every sql_mode: a trigger keeps the sql_mode of its creation, and a
// backslash is an escape or a plain character depending on
// NO_BACKSLASH_ESCAPES. So text with a backslash, a control character or
// invalid UTF-8 is written as CONVERT(X'…' USING utf8mb4), other text as '…'
// with quotes doubled. (Not _utf8mb4 X'…': information_schema.TRIGGERS shows
// the body without the introducer, which Check would report as drift.)
func QuoteString(s string) string {
	plain := utf8.ValidString(s)
	for _, r := range s {
		if r == '\\' || r < 0x20 || r == 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	if s == "" {
		return "''"
	}
	return "CONVERT(X'" + strings.ToUpper(hex.EncodeToString([]byte(s))) + "' USING utf8mb4)"
}

// IDList renders ids as the inside of an SQL IN list: "1,2,3".
func IDList(ids []uint64) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, id, 10)
	}
	return string(b)
}
