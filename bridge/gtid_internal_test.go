package bridge

import (
	"slices"
	"testing"
)

func TestSplitHosts(t *testing.T) {
	for _, c := range []struct {
		in, dsn string
		hosts   []string
	}{
		{"u:p@tcp(a:1,b:2)/db?x=1", "u:p@tcp(a:1)/db?x=1", []string{"a:1", "b:2"}},
		{"u@tcp(a:1)/db", "u@tcp(a:1)/db", nil},
		{"u@unix(/s)/db", "u@unix(/s)/db", nil},
		{"u@tcp(a:1, b:2 ,)/db", "u@tcp(a:1)/db", []string{"a:1", "b:2"}},
	} {
		dsn, hosts := splitHosts(c.in)
		if dsn != c.dsn || !slices.Equal(hosts, c.hosts) {
			t.Errorf("splitHosts(%q) = %q, %v; want %q, %v", c.in, dsn, hosts, c.dsn, c.hosts)
		}
	}
}

func TestGTIDSeqOrders(t *testing.T) {
	h := newHistory()
	file := eventSeq(h, "binlog.000123", 4567, 3)
	a, b, c := gtidSeq(h, 99, 5), gtidSeq(h, 100, 0), gtidSeq(h, 100, 1)
	if len(a) != 40 || len(file) != 40 {
		t.Fatalf("seq lengths %d, %d: want 40", len(a), len(file))
	}
	if !(file < a && a < b && b < c) {
		t.Errorf("want %s < %s < %s < %s", file, a, b, c)
	}
	// A later history orders after everything of an earlier one.
	later := "9" + h[1:]
	if gtidSeq(later, 1, 0) <= gtidSeq(h, 1<<40, 9) {
		t.Errorf("a later history's seq does not order after the earlier one's")
	}
}

func TestHAServerIDs(t *testing.T) {
	seen := map[uint32]bool{}
	for epoch := int64(1); epoch < 5000; epoch++ {
		id := haServerID(1001, epoch)
		if id < 1<<31 || seen[id] {
			t.Fatalf("epoch %d: server id %d repeats or is below 2^31", epoch, id)
		}
		seen[id] = true
	}
}
