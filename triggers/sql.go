package triggers

import (
	"strings"
)

// normalizeSpace collapses runs of white space, so a body compares equal to
// itself however it was indented.
func normalizeSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
