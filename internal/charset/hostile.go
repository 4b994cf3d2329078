package charset

import (
	"encoding/binary"
	"math/rand/v2"
)

// Hostile returns n values for a column of the character set name, for
// tests against the server: every byte (single-byte sets), edges and
// random byte strings, with bytes a client could store that are no
// character. The server may refuse or rewrite some on insert; tests compare
// with what it stored.
func Hostile(name string, rnd *rand.Rand, n int) [][]byte {
	var out [][]byte
	switch name {
	case "ucs2", "utf16", "utf16le", "utf32":
		return wide(name, rnd, n)
	}
	all := make([]byte, 0, 256)
	for b := range 256 {
		if b != 0 {
			all = append(all, byte(b))
		}
	}
	out = append(out, all, []byte{0x80}, []byte{0xFF}, []byte("'\"\\"), []byte{0x8F, 0xA1})
	for range 128 { // pairs and triples led by high bytes
		out = append(out, []byte{byte(0x80 + rnd.IntN(128)), byte(rnd.IntN(256)), byte(0x80 + rnd.IntN(128)), byte(rnd.IntN(256)), 'a'})
	}
	for len(out) < n {
		v := make([]byte, 1+rnd.IntN(16))
		for i := range v {
			if rnd.IntN(4) == 0 {
				v[i] = byte(0x20 + rnd.IntN(0x5F)) // ASCII between
			} else {
				v[i] = byte(0x80 + rnd.IntN(128))
			}
		}
		out = append(out, v)
	}
	return out[:n]
}

// wide returns values of UCS-2, UTF-16 (either order) or UTF-32: BMP and
// non-BMP characters, surrogates alone and paired, the largest code points.
func wide(name string, rnd *rand.Rand, n int) [][]byte {
	put := func(v []byte, r uint32) []byte {
		switch name {
		case "utf32":
			return binary.BigEndian.AppendUint32(v, r)
		case "utf16le":
			return binary.LittleEndian.AppendUint16(v, uint16(r))
		}
		return binary.BigEndian.AppendUint16(v, uint16(r))
	}
	char := func(v []byte, r uint32) []byte {
		if r > 0xFFFF && name != "utf32" {
			r -= 0x10000
			return put(put(v, 0xD800+r>>10), 0xDC00+r&0x3FF)
		}
		return put(v, r)
	}
	out := [][]byte{
		char(nil, 0x1F600), char(nil, 0x10FFFF), char(nil, 0xFFFF), char(nil, 0xFEFF), char(nil, 0x41),
		put(nil, 0xD83D), put(nil, 0xDE00), put(put(nil, 0xDE00), 0xD83D), put(char(nil, 0x41), 0xDBFF), char(nil, 0xE9),
	}
	for len(out) < n {
		var v []byte
		for range 1 + rnd.IntN(6) {
			switch rnd.IntN(4) {
			case 0:
				v = char(v, uint32(rnd.IntN(0x80)))
			case 1:
				v = char(v, uint32(0x80+rnd.IntN(0xD800-0x80)))
			case 2:
				v = char(v, uint32(0x10000+rnd.IntN(0x100000)))
			default:
				v = put(v, uint32(0xD800+rnd.IntN(0x800))) // a surrogate unit alone
			}
		}
		out = append(out, v)
	}
	return out[:n]
}
