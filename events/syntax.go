package events

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// The syntax pass: one walk over the payload that checks it is a single JSON
// value, exactly as json.Valid would, and notes where the envelope's fields
// and their row columns lie, so Decode does not have to find them again.
//
// It used to be json.Valid, then utf8.Valid, then a walk to find the fields,
// then another over each row: four passes, json.Valid alone taking ~40 % of
// Decode. What the pass accepts must stay exactly what json.Valid accepts;
// decode_diff_test.go compares the two.
//
// The pass reports no semantic error (repeated field, unknown field, …): a
// syntax error anywhere in the payload is reported first, whatever comes
// before it, so those wait until the whole payload has been checked.

// maxDepth is how deeply json.Valid lets arrays and objects nest.
const maxDepth = 10000

// maxColumns is how many row columns the pass records, in a fixed array so
// that recording them costs no allocation. An envelope with more (a table of
// over ~30 columns with pk, row and old) has its later rows walked again by
// parser.row, which is slower but gives the same result.
const maxColumns = 64

// span is the range [start, end) of the payload.
type span struct{ start, end int }

// column is one member of an object that is the value of an envelope field.
type column struct {
	key, val span
	spaced   bool // val has whitespace outside strings, to compact away
}

// fieldSpan is where the value of an envelope field lies.
type fieldSpan struct {
	val    span // val.end == 0: the field is absent
	cols   span // if val is an object: its members, indexes into syntax.cols
	colsOK bool // cols holds every member of val
}

// syntax is the state of the syntax pass over b.
type syntax struct {
	b       []byte
	i       int
	depth   int  // containers open at i
	badUTF8 bool // a string holds invalid UTF-8, reported after syntax errors
	spaced  bool // whitespace was skipped, see column.spaced

	// What the pass found at the top level (when it is an object).
	fields   [nFields]fieldSpan
	repeated span // key of the first repeated known field; end == 0: none
	unknown  span // key of the first unknown field, if not ""; end == 0: none

	cols     [maxColumns]column
	nCols    int
	colsFull bool // some column was not recorded
}

// plain[c] tells whether byte c stands for itself inside a JSON string: not
// a quote, a backslash, a control character or the start of a multi-byte
// UTF-8 sequence. Strings are most of a payload, so they get a table lookup
// per byte and nothing else.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// check walks the whole payload; false means json.Valid would refuse it.
func (sc *syntax) check() bool {
	sc.ws()
	if !sc.value() {
		return false
	}
	sc.ws()
	return sc.i == len(sc.b)
}

func (sc *syntax) ws() {
	if sc.i < len(sc.b) && sc.b[sc.i] > ' ' { // the usual case: compact JSON
		return
	}
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
			sc.spaced = true
		default:
			return
		}
	}
}

// next returns the byte at i, 0 at the end (never valid where it is tested).
func (sc *syntax) next() byte {
	if sc.i < len(sc.b) {
		return sc.b[sc.i]
	}
	return 0
}

// value consumes the value at i. The caller checks what follows it, so that
// "01", "truex" or "1 2" fail there.
func (sc *syntax) value() bool {
	switch sc.next() {
	case '{':
		return sc.object()
	case '[':
		return sc.array()
	case '"':
		return sc.str()
	case 't':
		return sc.literal("true")
	case 'f':
		return sc.literal("false")
	case 'n':
		return sc.literal("null")
	}
	return sc.number()
}

// enter opens a container; like json.Valid, it refuses to nest too deep.
func (sc *syntax) enter() bool {
	sc.depth++
	sc.i++ // { or [
	sc.ws()
	return sc.depth <= maxDepth
}

func (sc *syntax) object() bool {
	if !sc.enter() {
		return false
	}
	depth := sc.depth
	if sc.next() == '}' {
		sc.i++
		sc.depth--
		return true
	}
	for {
		key := span{start: sc.i}
		if sc.next() != '"' || !sc.str() {
			return false
		}
		key.end = sc.i
		sc.ws()
		if sc.next() != ':' {
			return false
		}
		sc.i++
		sc.ws()
		val := span{start: sc.i}
		firstCol := sc.nCols
		if depth == 2 {
			sc.spaced = false // column.spaced is about the value alone
		}
		if !sc.value() {
			return false
		}
		val.end = sc.i
		switch depth {
		case 1: // the envelope
			sc.field(key, val, firstCol)
		case 2: // a field's value: pk, row, old, or one Decode will refuse
			sc.column(key, val)
		}
		sc.ws()
		switch sc.next() {
		case ',':
			sc.i++
			sc.ws()
		case '}':
			sc.i++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

func (sc *syntax) array() bool {
	if !sc.enter() {
		return false
	}
	if sc.next() == ']' {
		sc.i++
		sc.depth--
		return true
	}
	for {
		if !sc.value() {
			return false
		}
		sc.ws()
		switch sc.next() {
		case ',':
			sc.i++
			sc.ws()
		case ']':
			sc.i++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

// field records a member of the envelope object. It mirrors what Decode used
// to do as it walked the envelope: the first repeated known field is the
// error, and of unknown fields the first one not named "" is reported.
func (sc *syntax) field(key, val span, firstCol int) {
	i := sc.fieldIndex(key)
	switch {
	case i < 0:
		if sc.unknown.end == 0 && key.end-key.start > len(`""`) {
			sc.unknown = key
		}
	case sc.fields[i].val.end != 0:
		if sc.repeated.end == 0 {
			sc.repeated = key
		}
	default:
		f := &sc.fields[i] // not a composite literal: see column
		f.val, f.cols, f.colsOK = val, span{firstCol, sc.nCols}, !sc.colsFull
	}
}

// fieldIndex is fieldIndex of the string at key, decoded.
func (sc *syntax) fieldIndex(key span) int {
	raw := sc.b[key.start+1 : key.end-1]
	for _, c := range raw {
		if c == '\\' { // rare: let encoding/json decode the escapes
			var name string
			_ = json.Unmarshal(sc.b[key.start:key.end], &name) // valid: str checked it
			return fieldIndex(name)
		}
	}
	switch string(raw) { // compiled to a search on length and bytes
	case "v":
		return fV
	case "id":
		return fID
	case "source":
		return fSource
	case "schema":
		return fSchema
	case "table":
		return fTable
	case "model":
		return fModel
	case "op":
		return fOp
	case "pk":
		return fPK
	case "row":
		return fRow
	case "old":
		return fOld
	case "modified":
		return fModified
	case "ts":
		return fTS
	case "pos":
		return fPos
	case "seq":
		return fSeq
	}
	return -1
}

func (sc *syntax) column(key, val span) {
	if sc.nCols == len(sc.cols) {
		sc.colsFull = true
		return
	}
	// Field by field: a composite literal here is built in a temporary and
	// copied, with a store-forwarding stall that cost 8 % of Decode.
	c := &sc.cols[sc.nCols]
	c.key, c.val, c.spaced = key, val, sc.spaced
	sc.nCols++
}

// str consumes the string at i: no control characters, only the escapes
// JSON defines (a \u escape may name a lone surrogate: json.Valid allows
// it), and valid UTF-8, which is only noted, as Decode reports it after any
// syntax error.
func (sc *syntax) str() bool {
	b, i := sc.b, sc.i+1 // after the opening quote
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			sc.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return false
					}
				}
				i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default: // c >= 0x80
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				sc.badUTF8 = true
			}
			i += n
		}
	}
}

// skipPlain returns the index of the first byte from i on that is not
// plain, or len(b).
func skipPlain(b []byte, i int) int {
	for len(b)-i >= 8 {
		if m := notPlain(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// notPlain looks at the 8 bytes of x (little-endian) at once: the high bit
// of a byte of the result is set if that byte is not plain, i.e. below
// 0x20, a quote, a backslash, or with its own high bit set. A byte above a
// non-plain one may be flagged wrongly (a borrow), never one below, so the
// lowest flagged byte is exactly the first non-plain one.
func notPlain(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	lt := func(x uint64, n byte) uint64 { return (x - ones*uint64(n)) &^ x } // byte < n
	return (lt(x, 0x20) | lt(x^(ones*'"'), 1) | lt(x^(ones*'\\'), 1) | x) & highs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *syntax) number() bool {
	b, i := sc.b, sc.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b) || !isDigit(b[i]):
		return false
	case b[i] == '0': // no leading zeros: "01" fails after the number
		i++
	default:
		i = digits(b, i)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		i = digits(b, i)
	}
	sc.i = i
	return true
}

// digits returns the end of the run of digits at i.
func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func (sc *syntax) literal(lit string) bool {
	if len(sc.b)-sc.i < len(lit) || string(sc.b[sc.i:sc.i+len(lit)]) != lit {
		return false
	}
	sc.i += len(lit)
	return true
}
