// Package phpser reads and writes PHP's serialize() format, for payloads
// exchanged with sfGearmanPlugin clients and workers.
//
// It is written for hostile input: every length and count is checked
// against the bytes left before anything is allocated, nesting is capped
// (MaxDepth, PHP's unserialize_max_depth), and the forms that carry
// behaviour or graphs in PHP are refused with an error naming them: objects
// of any class but stdClass (O:), custom serializations (C:), enums (E:)
// and references (r:, R:). A stdClass object reads as an array.
//
// Values read: nil (N), bool (b), int64 (i), float64 (d), string (s), and
// arrays as []any when their keys are 0..n-1 in order, else as
// map[string]any with integer keys written in decimal.
package phpser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// MaxDepth is the deepest nesting Unmarshal accepts, as PHP's default
// unserialize_max_depth.
const MaxDepth = 4096

// ErrSyntax is wrapped by every Unmarshal error.
var ErrSyntax = errors.New("php serialize")

// ErrRefused is wrapped (with ErrSyntax) by errors about a form this
// package refuses on purpose: an object, a reference, an enum.
var ErrRefused = errors.New("refused")

type decoder struct {
	b   []byte
	pos int
}

// Unmarshal decodes one serialized value that spans all of data.
func Unmarshal(data []byte) (any, error) {
	d := &decoder{b: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(d.b) {
		return nil, d.errf("%d bytes after the value", len(d.b)-d.pos)
	}
	return v, nil
}

// Valid reports whether data looks like the start of a serialized value:
// a type letter and a colon (or N;). For error messages that tell what a
// payload probably was.
func Valid(data []byte) bool {
	if len(data) >= 2 && string(data[:2]) == "N;" {
		return true
	}
	return len(data) >= 4 && strings.IndexByte("bidsaOCE", data[0]) >= 0 && data[1] == ':'
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrSyntax, d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) expect(c byte) error {
	if d.pos >= len(d.b) {
		return d.errf("truncated, want %q", c)
	}
	if d.b[d.pos] != c {
		return d.errf("want %q, got %q", c, d.b[d.pos])
	}
	d.pos++
	return nil
}

// until returns the bytes up to delim (excluded) and moves past delim;
// at most max bytes are scanned.
func (d *decoder) until(delim byte, max int) (string, error) {
	end := min(len(d.b), d.pos+max+1)
	i := bytes.IndexByte(d.b[d.pos:end], delim)
	if i < 0 {
		return "", d.errf("truncated or overlong, want %q", delim)
	}
	s := string(d.b[d.pos : d.pos+i])
	d.pos += i + 1
	return s, nil
}

// count reads a non-negative decimal length or count followed by delim.
func (d *decoder) count(delim byte, what string) (int, error) {
	s, err := d.until(delim, 20)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s != strconv.Itoa(n) {
		return 0, d.errf("bad %s %q", what, s)
	}
	return n, nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth >= MaxDepth {
		return nil, d.errf("nested deeper than %d", MaxDepth)
	}
	if d.pos >= len(d.b) {
		return nil, d.errf("truncated, want a value")
	}
	t := d.b[d.pos]
	d.pos++
	if t == 'N' {
		return nil, d.expect(';')
	}
	if strings.IndexByte("bidsaOCErR", t) < 0 {
		d.pos--
		return nil, d.errf("unknown type %q", t)
	}
	if err := d.expect(':'); err != nil {
		return nil, err
	}
	switch t {
	case 'b':
		s, err := d.until(';', 1)
		if err != nil {
			return nil, err
		}
		if s != "0" && s != "1" {
			return nil, d.errf("bad boolean %q", s)
		}
		return s == "1", nil
	case 'i':
		s, err := d.until(';', 21)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
		if err != nil {
			return nil, d.errf("bad or out-of-range integer %q", s)
		}
		return n, nil
	case 'd':
		s, err := d.until(';', 64)
		if err != nil {
			return nil, err
		}
		switch s {
		case "INF":
			return math.Inf(1), nil
		case "-INF":
			return math.Inf(-1), nil
		case "NAN":
			return math.NaN(), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || strings.ContainsAny(s, "xXpP_nN") {
			return nil, d.errf("bad float %q", s)
		}
		return f, nil
	case 's':
		return d.str()
	case 'a':
		return d.array(depth)
	case 'O':
		return d.object(depth)
	case 'C', 'E':
		return nil, fmt.Errorf("%w: %w: at byte %d: %s", ErrSyntax, ErrRefused, d.pos-2, map[byte]string{
			'C': "custom-serialized object (C:): a PHP class, not data",
			'E': "enum (E:): a PHP enum, not data"}[t])
	case 'r', 'R':
		return nil, fmt.Errorf("%w: %w: at byte %d: reference (%c:): send plain values", ErrSyntax, ErrRefused, d.pos-2, t)
	}
	panic("unreachable")
}

// str reads `len:"bytes";` after s:.
func (d *decoder) str() (string, error) {
	n, err := d.count(':', "string length")
	if err != nil {
		return "", err
	}
	if err := d.expect('"'); err != nil {
		return "", err
	}
	if n > len(d.b)-d.pos {
		return "", d.errf("string of %d bytes, only %d left", n, len(d.b)-d.pos)
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	if err := d.expect('"'); err != nil {
		return "", err
	}
	return s, d.expect(';')
}

// array reads `count:{key value ...}` after a: (or after an object's
// class name).
func (d *decoder) array(depth int) (any, error) {
	n, err := d.count(':', "element count")
	if err != nil {
		return nil, err
	}
	// Each element takes at least 6 bytes ("i:0;N;"): a count the input
	// cannot hold is refused before anything is allocated.
	if n > (len(d.b)-d.pos)/6 {
		return nil, d.errf("%d elements announced, the %d bytes left cannot hold them", n, len(d.b)-d.pos)
	}
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	keys := make([]string, 0, n)
	vals := make(map[string]any, n)
	list := true
	for i := 0; i < n; i++ {
		k, isInt, err := d.key()
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := vals[k]; dup {
			list = false // the last wins, as in PHP
		} else {
			keys = append(keys, k)
		}
		if !isInt || k != strconv.Itoa(len(keys)-1) {
			list = false
		}
		vals[k] = v
	}
	if err := d.expect('}'); err != nil {
		return nil, err
	}
	if list {
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = vals[k]
		}
		return out, nil
	}
	return vals, nil
}

// key reads an array key: an int, or a string (a string holding a
// canonical int is that int, as PHP makes it).
func (d *decoder) key() (string, bool, error) {
	if d.pos+2 > len(d.b) {
		return "", false, d.errf("truncated, want an array key")
	}
	switch d.b[d.pos] {
	case 'i':
		d.pos += 2
		if d.b[d.pos-1] != ':' {
			return "", false, d.errf("bad array key")
		}
		s, err := d.until(';', 21)
		if err != nil {
			return "", false, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", false, d.errf("bad integer key %q", s)
		}
		return strconv.FormatInt(n, 10), true, nil
	case 's':
		d.pos += 2
		if d.b[d.pos-1] != ':' {
			return "", false, d.errf("bad array key")
		}
		s, err := d.str()
		if err != nil {
			return "", false, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return s, err == nil && strconv.FormatInt(n, 10) == s, nil
	}
	return "", false, d.errf("array key must be i: or s:, got %q", d.b[d.pos])
}

// object reads O:len:"class":count:{...}; only stdClass, PHP's plain
// object (json_decode's, a cast (object)$array), is data.
func (d *decoder) object(depth int) (any, error) {
	start := d.pos - 2
	class, err := d.str0()
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(class, "stdClass") {
		return nil, fmt.Errorf("%w: %w: at byte %d: object of class %.64q: only arrays and stdClass are data (cast the object to an array)", ErrSyntax, ErrRefused, start, class)
	}
	return d.array(depth)
}

// str0 reads `len:"name":` (an object's class name).
func (d *decoder) str0() (string, error) {
	n, err := d.count(':', "class name length")
	if err != nil {
		return "", err
	}
	if err := d.expect('"'); err != nil {
		return "", err
	}
	if n > len(d.b)-d.pos || n > 1024 {
		return "", d.errf("class name of %d bytes", n)
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	if err := d.expect('"'); err != nil {
		return "", err
	}
	return s, d.expect(':')
}

// Marshal encodes v as PHP's serialize() would encode the matching PHP
// value: nil as N, bool, integers as i (a uint above PHP_INT_MAX is an
// error), floats as d in PHP's notation (INF, -INF, NAN, -0, 1.0E+25),
// strings and []byte as s (byte lengths), slices and arrays as lists,
// maps with string or integer keys as arrays (sorted by key, so the output
// is stable; a numeric string key becomes an int key, as in PHP), structs
// as arrays keyed by their JSON field names, and a type with MarshalJSON
// (time.Time) as its JSON form: a JSON object becomes an array, a JSON
// number an int or a float.
func Marshal(v any) ([]byte, error) {
	var e encoder
	if err := e.value(reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct{ buf []byte }

func (e *encoder) value(v reflect.Value, depth int) error {
	if depth >= MaxDepth {
		return fmt.Errorf("php serialize: nested deeper than %d (a cycle?)", MaxDepth)
	}
	if !v.IsValid() {
		e.buf = append(e.buf, "N;"...)
		return nil
	}
	if v.Type() == jsonNumber {
		return e.tree(v.Interface().(json.Number), depth)
	}
	if v.Type().Implements(jsonMarshaler) && v.Kind() != reflect.Interface {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.IsNil() {
			e.buf = append(e.buf, "N;"...)
			return nil
		}
		return e.viaJSON(v, depth)
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "N;"...)
			return nil
		}
		return e.value(v.Elem(), depth+1)
	case reflect.Bool:
		if v.Bool() {
			e.buf = append(e.buf, "b:1;"...)
		} else {
			e.buf = append(e.buf, "b:0;"...)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return fmt.Errorf("php serialize: %d does not fit a PHP int", v.Uint())
		}
		e.int(int64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		e.buf = append(e.buf, "d:"...)
		e.buf = AppendFloat(e.buf, v.Float(), v.Type().Bits())
		e.buf = append(e.buf, ';')
	case reflect.String:
		e.str(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			e.str(string(v.Bytes()))
			return nil
		}
		if v.Kind() == reflect.Slice && v.IsNil() {
			e.buf = append(e.buf, "N;"...)
			return nil
		}
		e.buf = fmt.Appendf(e.buf, "a:%d:{", v.Len())
		for i := 0; i < v.Len(); i++ {
			e.int(int64(i))
			if err := e.value(v.Index(i), depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, "N;"...)
			return nil
		}
		return e.mapValue(v, depth)
	case reflect.Struct:
		return e.structValue(v, depth)
	default:
		return fmt.Errorf("php serialize: cannot encode a %s", v.Type())
	}
	return nil
}

func (e *encoder) mapValue(v reflect.Value, depth int) error {
	type kv struct {
		k string
		v reflect.Value
	}
	var kvs []kv
	for it := v.MapRange(); it.Next(); {
		k := it.Key()
		var ks string
		switch k.Kind() {
		case reflect.String:
			ks = k.String()
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ks = strconv.FormatInt(k.Int(), 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			ks = strconv.FormatUint(k.Uint(), 10)
		default:
			return fmt.Errorf("php serialize: map key type %s: want a string or an integer", k.Type())
		}
		kvs = append(kvs, kv{ks, it.Value()})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	e.buf = fmt.Appendf(e.buf, "a:%d:{", len(kvs))
	for _, p := range kvs {
		if n, err := strconv.ParseInt(p.k, 10, 64); err == nil && strconv.FormatInt(n, 10) == p.k {
			e.int(n)
		} else {
			e.str(p.k)
		}
		if err := e.value(p.v, depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *encoder) int(n int64) {
	e.buf = append(e.buf, "i:"...)
	e.buf = strconv.AppendInt(e.buf, n, 10)
	e.buf = append(e.buf, ';')
}

func (e *encoder) str(s string) {
	e.buf = append(e.buf, "s:"...)
	e.buf = strconv.AppendInt(e.buf, int64(len(s)), 10)
	e.buf = append(e.buf, ":\""...)
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, "\";"...)
}

// AppendFloat appends f as PHP's serialize() writes it (serialize_precision
// -1): the shortest digits that read back the same, in exponent form
// ("1.0E+25", "1.5E-7") when the exponent is below -4 or 17 and above.
func AppendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "INF"...)
	case math.IsInf(f, -1):
		return append(b, "-INF"...)
	case math.IsNaN(f):
		return append(b, "NAN"...)
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0"...)
		}
		return append(b, '0')
	}
	s := strconv.FormatFloat(f, 'e', -1, bits) // d.ddddde±XX
	mant, exps, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(exps)
	if exp < -4 || exp >= 17 {
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		b = append(b, mant...)
		b = append(b, 'E')
		if exp >= 0 {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits)
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	jsonNumber    = reflect.TypeFor[json.Number]()
)

// structValue writes a struct as an array keyed by its encoding/json names
// (tags, omitempty, "-", promoted fields of embedded structs), field
// values keeping their Go types: a float64 field stays a PHP float.
func (e *encoder) structValue(v reflect.Value, depth int) error {
	type field struct {
		name string
		v    reflect.Value
	}
	var fields []field
	for _, f := range reflect.VisibleFields(v.Type()) {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			continue // its fields are promoted
		}
		if !f.IsExported() {
			continue
		}
		fv, err := v.FieldByIndexErr(f.Index)
		if err != nil {
			continue // through a nil embedded pointer
		}
		if strings.Contains(opts, "omitempty") && fv.IsZero() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, field{name, fv})
	}
	e.buf = fmt.Appendf(e.buf, "a:%d:{", len(fields))
	for _, f := range fields {
		e.str(f.name)
		if err := e.value(f.v, depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// viaJSON encodes v's encoding/json form, so struct tags and MarshalJSON
// decide the keys as they do for JSON payloads.
func (e *encoder) viaJSON(v reflect.Value, depth int) error {
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Errorf("php serialize: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("php serialize: %w", err)
	}
	return e.tree(tree, depth+1)
}

func (e *encoder) tree(t any, depth int) error {
	if n, ok := t.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			e.int(i)
			return nil
		}
		f, err := n.Float64()
		if err != nil {
			return fmt.Errorf("php serialize: number %s: %w", n, err)
		}
		e.buf = append(e.buf, "d:"...)
		e.buf = AppendFloat(e.buf, f, 64)
		e.buf = append(e.buf, ';')
		return nil
	}
	return e.value(reflect.ValueOf(t), depth)
}
