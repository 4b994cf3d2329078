// Package ids makes the random ids rowgear gives jobs, event ids and files.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random 32-hex-digit id.
func New() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
