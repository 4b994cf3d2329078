package bridge

import (
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/internal/charset"
)

func benchMeta(tm *replication.TableMapEvent) (*tableMeta, error) {
	return newMeta(tm, nil, 0, func(uint64) (*charset.Charset, error) { return charset.Get("utf8mb4") })
}
