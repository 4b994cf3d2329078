// Package charset converts the bytes of a MariaDB/MySQL character column
// to UTF-8 the way the server's CONVERT(col USING utf8mb4) does, so that a
// value read from the binlog (raw bytes in the column's character set) is
// published byte for byte as the trigger source, which converts in SQL,
// publishes it.
//
// The mappings come from golang.org/x/text's encodings where they agree with
// the server, and from tables derived from the server itself where they do
// not (tables.go, written by `go generate` with gen/, which asks a MariaDB
// for CONVERT of every 1-byte sequence, every 2-byte one with a lead byte of
// 0x80 or more, and every 0x8F-led 3-byte one, and keeps where x/text
// differs). Like the server, a byte that starts no character becomes '?'
// and the next byte is read; a well-formed sequence without a Unicode
// mapping becomes one '?'.
//
// UCS-2, UTF-16 and UTF-32 are converted unit by unit as the server does: a
// valid surrogate pair of UTF-16 is one character; a lone surrogate of
// UTF-16 is '?' per byte; a surrogate unit of UCS-2 or UTF-32 (which those
// columns can hold) is what the server writes as a 3-byte CESU sequence,
// not UTF-8: Append fails with ErrNotUTF8 for it, since no JSON string can
// carry it.
package charset

//go:generate go run ./gen -o tables.go

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

var (
	// ErrUnknown: a character set this package does not convert.
	ErrUnknown = errors.New("charset: unknown character set")
	// ErrNotUTF8: the server's conversion of the value is not UTF-8 (a
	// surrogate code unit in a ucs2 or utf32 column).
	ErrNotUTF8 = errors.New("charset: the server's conversion to utf8mb4 is not UTF-8")
)

type kind int

const (
	kUTF8    kind = iota // utf8mb3, utf8mb4: valid bytes pass through
	kTable               // single- and multi-byte sets: table driven
	kUCS2                // UCS-2, big endian
	kUTF16               // UTF-16 big endian
	kUTF16LE             // UTF-16 little endian
	kUTF32               // UTF-32 big endian
	kStream              // converted by x/text as a stream (MySQL's gb18030; not checked against a server)
)

// Charset converts one character set.
type Charset struct {
	name string
	kind kind
	base encoding.Encoding // nil: ASCII, everything else from the exceptions
	mb   int               // longest sequence in the tables: 1, 2 or 3

	once    sync.Once
	single  [256]rune
	pairs   []rune // [(lead-0x80)<<8 | trail]: the character, or -1: not one sequence
	triples map[uint16]rune
}

// Name is the server's name of the character set.
func (c *Charset) Name() string { return c.name }

// bases are the character sets MariaDB and MySQL have, with the x/text
// encoding that is closest to each (nil: none; the server-derived
// exceptions then give every byte above 0x7F, or every byte for swe7).
var bases = map[string]struct {
	enc encoding.Encoding
	mb  int
}{
	"latin1": {charmap.Windows1252, 1}, "latin2": {charmap.ISO8859_2, 1}, "latin5": {charmap.ISO8859_9, 1},
	"latin7": {charmap.ISO8859_13, 1}, "greek": {charmap.ISO8859_7, 1}, "hebrew": {charmap.ISO8859_8, 1},
	"cp1250": {charmap.Windows1250, 1}, "cp1251": {charmap.Windows1251, 1}, "cp1256": {charmap.Windows1256, 1},
	"cp1257": {charmap.Windows1257, 1}, "cp850": {charmap.CodePage850, 1}, "cp852": {charmap.CodePage852, 1},
	"cp866": {charmap.CodePage866, 1}, "koi8r": {charmap.KOI8R, 1}, "koi8u": {charmap.KOI8U, 1},
	"macroman": {charmap.Macintosh, 1}, "tis620": {charmap.Windows874, 1},
	"ascii": {nil, 1}, "armscii8": {nil, 1}, "dec8": {nil, 1}, "geostd8": {nil, 1}, "hp8": {nil, 1},
	"keybcs2": {nil, 1}, "macce": {nil, 1}, "swe7": {nil, 1},
	"big5": {traditionalchinese.Big5, 2}, "gbk": {simplifiedchinese.GBK, 2}, "gb2312": {simplifiedchinese.GBK, 2},
	"sjis": {japanese.ShiftJIS, 2}, "cp932": {japanese.ShiftJIS, 2}, "euckr": {korean.EUCKR, 2},
	"ujis": {japanese.EUCJP, 3}, "eucjpms": {japanese.EUCJP, 3},
}

var (
	mu     sync.Mutex
	loaded = map[string]*Charset{}
)

// Get returns the converter of the character set the server calls name
// (SHOW CHARACTER SET; MySQL's utf8 and utf8mb3 are one).
func Get(name string) (*Charset, error) {
	name = strings.ToLower(name)
	mu.Lock()
	defer mu.Unlock()
	if c := loaded[name]; c != nil {
		return c, nil
	}
	c := &Charset{name: name}
	switch name {
	case "utf8mb4", "utf8mb3", "utf8":
		c.kind = kUTF8
	case "ucs2":
		c.kind = kUCS2
	case "utf16":
		c.kind = kUTF16
	case "utf16le":
		c.kind = kUTF16LE
	case "utf32":
		c.kind = kUTF32
	case "gb18030":
		c.kind, c.base = kStream, simplifiedchinese.GB18030
	default:
		b, ok := bases[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
		}
		c.kind, c.base, c.mb = kTable, b.enc, b.mb
	}
	loaded[name] = c
	return c, nil
}

// Names lists the table-driven character sets (for the generator).
func Names() []string {
	var out []string
	for n := range bases {
		out = append(out, n)
	}
	return out
}

// MaxLen is the longest sequence the tables of a table-driven set hold.
func MaxLen(name string) int { return bases[name].mb }

// BaseRune is what x/text alone makes of seq as one character: ok when it
// decodes to exactly one rune that is not U+FFFD (for the generator, and
// for building the tables).
func BaseRune(name string, seq []byte) (rune, bool) {
	enc := bases[name].enc
	if enc == nil {
		if len(seq) == 1 && seq[0] < 0x80 && name != "swe7" {
			return rune(seq[0]), true
		}
		return 0, false
	}
	out, err := enc.NewDecoder().Bytes(seq)
	if err != nil {
		return 0, false
	}
	r, n := utf8.DecodeRune(out)
	if n != len(out) || r == utf8.RuneError {
		return 0, false
	}
	return r, true
}

// exception is where the server differs from x/text: seq (n bytes, big
// endian in the low bytes) is the character r, or with r = -1 no one
// character (the server reads its first byte alone).
type exception struct {
	seq uint32
	n   uint8
	r   rune
}

// build fills the tables from x/text and the server's exceptions.
func (c *Charset) build() {
	for b := range 256 {
		r, ok := BaseRune(c.name, []byte{byte(b)})
		if !ok {
			r = '?'
		}
		c.single[b] = r
	}
	if c.mb >= 2 {
		c.pairs = make([]rune, 0x8000)
		var seq [2]byte
		for i := range c.pairs {
			seq[0], seq[1] = byte(0x80+i>>8), byte(i)
			r, ok := BaseRune(c.name, seq[:])
			if !ok {
				r = -1
			}
			c.pairs[i] = r
		}
	}
	if c.mb >= 3 {
		c.triples = map[uint16]rune{}
		var seq = [3]byte{0x8F}
		for i := range 0x10000 {
			seq[1], seq[2] = byte(i>>8), byte(i)
			if r, ok := BaseRune(c.name, seq[:]); ok {
				c.triples[uint16(i)] = r
			}
		}
	}
	for _, e := range exceptions[c.name] {
		switch e.n {
		case 1:
			c.single[e.seq] = e.r
		case 2:
			c.pairs[e.seq-0x8000] = e.r
		case 3:
			if e.r < 0 {
				delete(c.triples, uint16(e.seq))
			} else {
				c.triples[uint16(e.seq)] = e.r
			}
		}
	}
}

// Append appends src, bytes of c, converted to UTF-8 as the server's
// CONVERT(… USING utf8mb4) converts them.
func (c *Charset) Append(dst, src []byte) ([]byte, error) {
	switch c.kind {
	case kUTF8:
		if utf8.Valid(src) {
			return append(dst, src...), nil
		}
		return appendValidUTF8(dst, src)
	case kTable:
		c.once.Do(c.build)
		return c.appendTable(dst, src), nil
	case kStream:
		out, err := c.base.NewDecoder().Bytes(src)
		if err != nil {
			return nil, err
		}
		return append(dst, strings.ToValidUTF8(string(out), "?")...), nil
	}
	return c.appendWide(dst, src)
}

// appendValidUTF8 replaces each byte that starts no valid UTF-8 sequence
// with '?', as the server's utf8 readers do. The server takes a surrogate
// encoded in 3 bytes (ED A0-BF xx) as a character, which is not UTF-8.
func appendValidUTF8(dst, src []byte) ([]byte, error) {
	for len(src) > 0 {
		r, n := utf8.DecodeRune(src)
		if n <= 1 && len(src) >= 3 && src[0] == 0xED && src[1]&0xE0 == 0xA0 && src[2]&0xC0 == 0x80 {
			return nil, fmt.Errorf("%w: utf8 holds the surrogate U+%04X", ErrNotUTF8, 0xD000|rune(src[1]&0x3F)<<6|rune(src[2]&0x3F))
		}
		if r == utf8.RuneError && n <= 1 {
			dst = append(dst, '?')
			src = src[1:]
			continue
		}
		dst = append(dst, src[:n]...)
		src = src[n:]
	}
	return dst, nil
}

func (c *Charset) appendTable(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		b := src[i]
		if b >= 0x80 {
			if c.triples != nil && b == 0x8F && i+2 < len(src) {
				if r, ok := c.triples[uint16(src[i+1])<<8|uint16(src[i+2])]; ok {
					dst = utf8.AppendRune(dst, r)
					i += 3
					continue
				}
			}
			if c.pairs != nil && i+1 < len(src) {
				if r := c.pairs[int(b-0x80)<<8|int(src[i+1])]; r >= 0 {
					dst = utf8.AppendRune(dst, r)
					i += 2
					continue
				}
			}
		}
		dst = utf8.AppendRune(dst, c.single[b])
		i++
	}
	return dst
}

// appendWide converts UCS-2, UTF-16 (both byte orders) and UTF-32.
func (c *Charset) appendWide(dst, src []byte) ([]byte, error) {
	unit := 2
	if c.kind == kUTF32 {
		unit = 4
	}
	for i := 0; i < len(src); {
		if i+unit > len(src) {
			dst = append(dst, '?') // a truncated unit: the server writes '?' per byte
			i++
			continue
		}
		var r rune
		switch c.kind {
		case kUTF32:
			r = rune(binary.BigEndian.Uint32(src[i:]))
		case kUTF16LE:
			r = rune(binary.LittleEndian.Uint16(src[i:]))
		default:
			r = rune(binary.BigEndian.Uint16(src[i:]))
		}
		switch {
		case c.kind == kUTF32 && r > utf8.MaxRune:
			dst = append(dst, '?') // not a character: the server skips one byte
			i++
			continue
		case utf16.IsSurrogate(r) && (c.kind == kUTF16 || c.kind == kUTF16LE):
			if r < 0xDC00 && i+4 <= len(src) {
				lo := rune(binary.BigEndian.Uint16(src[i+2:]))
				if c.kind == kUTF16LE {
					lo = rune(binary.LittleEndian.Uint16(src[i+2:]))
				}
				if p := utf16.DecodeRune(r, lo); p != utf8.RuneError {
					dst = utf8.AppendRune(dst, p)
					i += 4
					continue
				}
			}
			dst = append(dst, '?') // a lone surrogate: the server skips one byte
			i++
			continue
		case utf16.IsSurrogate(r):
			return nil, fmt.Errorf("%w: %s holds the surrogate code unit U+%04X", ErrNotUTF8, c.name, r)
		}
		dst = utf8.AppendRune(dst, r)
		i += unit
	}
	return dst, nil
}
