package bridge

import (
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// BenchmarkDecodeUTF8Text is the rate at which rows of utf8mb4 text (one
// INT key, four VARCHARs of mixed ASCII and multi-byte text) are turned
// into their wire form, as the handler does for every binlog row: the cost
// the character-set conversion must not raise for utf8mb4.
// Run: go test ./bridge -run '^$' -bench DecodeUTF8Text -count 10
func BenchmarkDecodeUTF8Text(b *testing.B) {
	tm := &replication.TableMapEvent{Schema: []byte("app"), Table: []byte("posts"), ColumnCount: 5,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VARCHAR,
			mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VARCHAR},
		ColumnMeta:     []uint16{0, 1000, 1000, 1000, 1000},
		ColumnName:     [][]byte{[]byte("id"), []byte("title"), []byte("body"), []byte("tags"), []byte("author")},
		DefaultCharset: []uint64{45}, // utf8mb4_general_ci
		PrimaryKey:     []uint64{0},
	}
	m, err := benchMeta(tm)
	if err != nil {
		b.Fatal(err)
	}
	row := []any{int32(42), "A title with some words in it",
		strings.Repeat("Le café où l'on dîne, 東京の夜, \"quoted\" text and a tab\t. ", 4),
		"go,mysql,gearman,binlog", "Zoë Ñandú 🚀"}
	n := 0
	for _, v := range row[1:] {
		n += len(v.(string))
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.image(row); err != nil {
			b.Fatal(err)
		}
	}
}
