package sqlschema

import "testing"

func TestIDList(t *testing.T) {
	for _, c := range []struct {
		ids  []uint64
		want string
	}{{nil, ""}, {[]uint64{7}, "7"}, {[]uint64{1, 20, 18446744073709551615}, "1,20,18446744073709551615"}} {
		if got := IDList(c.ids); got != c.want {
			t.Errorf("IDList(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
}
