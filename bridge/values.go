package bridge

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/jsonstr"
)

// kind is how a column's decoded binlog value becomes its wire form
// (events/doc.go).
type kind int

const (
	kNumber kind = iota // integers, YEAR: go-mysql gives sized ints, unsigned ones as uints
	kFloat              // FLOAT: MariaDB's text of it (6 significant digits)
	kDouble             // DOUBLE: MariaDB's text of it (shortest round-trip digits)
	kBit                // BIT: go-mysql gives int64; the value is unsigned
	kString             // DECIMAL and temporals (go-mysql formats them), CHAR, TEXT, …
	kJSON               // JSON (MariaDB: LONGTEXT with a json_valid check)
	kBinary             // BINARY, VARBINARY, BLOB, GEOMETRY: base64
	kEnum               // go-mysql gives the 1-based index
	kSet                // go-mysql gives the bitmap
	kTime               // TIME: go-mysql drops a zero fraction; the column precision is kept
	kUUID               // MariaDB UUID: 16 bytes in the binlog, its text in events
	kInet4              // MariaDB INET4: 4 bytes
	kInet6              // MariaDB INET6: 16 bytes
)

type column struct {
	name   string
	kind   kind
	fixed  int              // BINARY(n): the binlog drops trailing zero bytes, the column has n
	prec   int              // TIME(p)
	values []string         // ENUM and SET members
	cs     *charset.Charset // text in a character set other than utf8mb4: converted as the server's CONVERT does
}

// members parses the quoted list of enum('a','b”c') or set(…) as
// information_schema's COLUMN_TYPE writes it.
func members(raw string) []string {
	open := strings.IndexByte(raw, '(')
	if open < 0 {
		return nil
	}
	var out []string
	s := raw[open+1:]
	for {
		s = strings.TrimLeft(s, ", ")
		if s == "" || s[0] != '\'' {
			return out
		}
		var b strings.Builder
		i := 1
		for i < len(s) {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i += 2
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		out = append(out, b.String())
		if i >= len(s) {
			return out
		}
		s = s[i+1:]
	}
}

// encode returns v, as go-mysql decoded it for column c, in wire form; nil
// for NULL.
func (c *column) encode(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kBit:
		if n, ok := v.(int64); ok {
			return strconv.AppendUint(nil, uint64(n), 10), nil
		}
	case kEnum:
		if n, ok := v.(int64); ok {
			name := "" // index 0: the "" MySQL stores for an invalid value
			if n > 0 && int(n) <= len(c.values) {
				name = c.values[n-1]
			}
			return jsonstr.Append(nil, name), nil
		}
	case kTime:
		if s, ok := v.(string); ok && c.prec > 0 && !strings.Contains(s, ".") {
			return jsonstr.Append(nil, s+"."+strings.Repeat("0", c.prec)), nil
		}
	case kSet:
		if n, ok := v.(int64); ok {
			var names []string
			for i, m := range c.values {
				if n&(1<<i) != 0 {
					names = append(names, m)
				}
			}
			return jsonstr.Append(nil, strings.Join(names, ",")), nil
		}
	case kFloat:
		if f, ok := v.(float32); ok {
			return appendMariaDBFloat(nil, float64(f), 6), nil
		}
	case kDouble:
		if f, ok := v.(float64); ok {
			return appendMariaDBFloat(nil, f, -1), nil
		}
	}
	switch x := v.(type) {
	case string:
		if c.kind == kString && c.cs == nil && utf8.ValidString(x) {
			return jsonstr.Append(nil, x), nil // utf8mb4 text: no copy, no conversion
		}
		return c.bytes([]byte(x))
	case []byte:
		return c.bytes(x)
	}
	if n, ok := appendInteger(nil, v); ok {
		return n, nil
	}
	return nil, fmt.Errorf("%w: column %s: unexpected %T for its binlog type", errPoison, c.name, v)
}

// appendInteger appends v when it is one of the integer types go-mysql
// decodes to.
func appendInteger(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	}
	return b, false
}

func (c *column) bytes(b []byte) (json.RawMessage, error) {
	switch c.kind {
	case kBinary:
		if len(b) < c.fixed {
			b = append(b[:len(b):len(b)], make([]byte, c.fixed-len(b))...)
		}
		out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, b)
		return append(out, '"'), nil
	case kJSON:
		if len(b) == 0 { // MySQL's empty JSON document (INSERT IGNORE of NULL)
			return json.RawMessage("null"), nil
		}
		if json.Valid(b) {
			return append(json.RawMessage(nil), b...), nil
		}
		// Not JSON: a row from before the column became JSON (the type
		// comes from today's schema); it was text then.
	case kUUID, kInet4, kInet6:
		return c.fixedText(b)
	}
	if c.cs != nil {
		conv, err := c.cs.Append(make([]byte, 0, len(b)+len(b)/2), b)
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %w", errPoison, c.name, err)
		}
		b = conv
	} else if !utf8.Valid(b) {
		// utf8mb4 as the server reads it: '?' for a byte that starts no
		// character (a column can hold them only when written unchecked).
		conv, err := utf8mb4.Append(nil, b)
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %w", errPoison, c.name, err)
		}
		b = conv
	}
	return jsonstr.Append(nil, string(b)), nil
}

var utf8mb4, _ = charset.Get("utf8mb4")

// fixedText renders MariaDB's UUID, INET4 and INET6 as the server shows them.
func (c *column) fixedText(b []byte) (json.RawMessage, error) {
	n := 16
	if c.kind == kInet4 {
		n = 4
	}
	if len(b) < n { // the binlog drops trailing zero bytes of fixed strings
		b = append(b[:len(b):len(b)], make([]byte, n-len(b))...)
	}
	if len(b) != n {
		return nil, fmt.Errorf("%w: column %s: %d bytes, want %d", errPoison, c.name, len(b), n)
	}
	switch c.kind {
	case kUUID:
		const hex = "0123456789abcdef"
		out := make([]byte, 0, 38)
		out = append(out, '"')
		for i, x := range b {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				out = append(out, '-')
			}
			out = append(out, hex[x>>4], hex[x&15])
		}
		return append(out, '"'), nil
	case kInet4:
		return jsonstr.Append(nil, netip.AddrFrom4([4]byte(b)).String()), nil
	}
	return jsonstr.Append(nil, inet6String([16]byte(b))), nil
}

// inet6String is MariaDB's INET6 text (its inet_ntop): groups in lower-case
// hex without leading zeros, the longest run of zero groups (the first of
// equal ones, even a single group) written "::", and an IPv4 tail in dotted
// form after six zero groups or five and ffff (::1.2.3.4, ::ffff:1.2.3.4).
func inet6String(a [16]byte) string {
	var w [8]uint16
	for i := range w {
		w[i] = binary.BigEndian.Uint16(a[2*i:])
	}
	best, bestLen, cur, curLen := -1, 0, -1, 0
	for i := 0; i <= len(w); i++ {
		if i < len(w) && w[i] == 0 {
			if cur < 0 {
				cur, curLen = i, 0
			}
			curLen++
			continue
		}
		if cur >= 0 && curLen > bestLen {
			best, bestLen = cur, curLen
		}
		cur = -1
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if i == best {
			b.WriteString("::")
			i += bestLen - 1
			continue
		}
		if i > 0 && i != best+bestLen {
			b.WriteByte(':')
		}
		if i == 6 && best == 0 && (bestLen == 6 || bestLen == 5 && w[5] == 0xffff) {
			b.WriteString(netip.AddrFrom4([4]byte(a[12:])).String())
			break
		}
		b.WriteString(strconv.FormatUint(uint64(w[i]), 16))
	}
	return b.String()
}

// appendMariaDBFloat writes f as MariaDB writes a FLOAT (digits 6) or
// DOUBLE (digits -1: shortest round-trip) value, in JSON_OBJECT and SELECT
// alike (strings/dtoa.c my_gcvt): the significant digits in plain notation
// when the decimal exponent is within [-14, 15] (or every digit is left of
// the point), else d[.ddd]e[-]x without a plus sign or leading zeros.
func appendMariaDBFloat(b []byte, f float64, digits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // MariaDB stores neither
	}
	if f == 0 {
		return append(b, '0') // MariaDB writes -0 as 0 too
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// e-notation gives the digits and the exponent: d.ddde±x
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	if digits > 0 && len(mant)-strings.Count(mant, ".") > digits {
		mant, exp, _ = strings.Cut(strconv.FormatFloat(f, 'e', digits-1, 64), "e")
	}
	ds := strings.Replace(mant, ".", "", 1)
	ds = strings.TrimRight(ds, "0")
	if ds == "" {
		ds = "0"
	}
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // digits left of the point
	n := len(ds)
	if decpt >= -14 && (decpt <= 15 || n > decpt) {
		switch {
		case decpt <= 0:
			b = append(b, "0."...)
			for range -decpt {
				b = append(b, '0')
			}
			return append(b, ds...)
		case decpt >= n:
			b = append(b, ds...)
			for range decpt - n {
				b = append(b, '0')
			}
			return b
		default:
			b = append(b, ds[:decpt]...)
			b = append(b, '.')
			return append(b, ds[decpt:]...)
		}
	}
	b = append(b, ds[0])
	if n > 1 {
		b = append(b, '.')
		b = append(b, ds[1:]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(decpt-1), 10)
}
