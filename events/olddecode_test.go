package events

// This file keeps the previous implementation of Decode (json.Valid, then
// utf8.Valid, then a parser that trusts the syntax), unchanged but renamed,
// as the oracle for the differential tests in decode_diff_test.go: Decode
// must accept exactly what it accepted, with the same result, and refuse
// exactly what it refused, with the same error.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// oldDecode is Decode as it was before the single-pass parser: json.Valid,
// utf8.Valid, then a walk that trusts the syntax. It is the oracle of the
// differential tests; keep it verbatim.
//
// Decode parses a version-1 envelope. It is strict: field names match
// exactly (case included), and an unknown or repeated field, a missing or
// empty required one, a value of the wrong JSON type, an unknown op or
// source, invalid UTF-8 and data after the envelope are all errors wrapping
// ErrMalformed and naming the field. A version other than 1 gives ErrVersion
// before anything else is checked.
//
// Row values come back compacted; TS comes back in UTC, truncated to
// microseconds. The envelope does not alias data.
func oldDecode(data []byte) (*Envelope, error) {
	if !json.Valid(data) {
		return nil, syntaxError(data)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	// One copy as string and one as bytes: field strings and column names are
	// substrings of s, column values sub-slices of b. Two allocations in all.
	s := string(data)
	p := oldParser{s: s, b: []byte(s)}
	p.ws()
	if p.peek() != '{' {
		return nil, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformed, typeName(p.peek()))
	}
	var (
		raw     [nFields]struct{ s, e int } // value bounds in p; e == 0: absent
		unknown string
	)
	err := p.object(func(key string) error {
		i := fieldIndex(key)
		if i < 0 {
			if unknown == "" {
				unknown = key
			}
			p.skip()
			return nil
		}
		if raw[i].e != 0 {
			return malformed(key, "repeated")
		}
		raw[i].s = p.i
		p.skip()
		raw[i].e = p.i
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The version decides what the rest means: check it first.
	if raw[fV].e == 0 {
		return nil, malformed("v", "missing")
	}
	v := s[raw[fV].s:raw[fV].e]
	if typeName(v[0]) != "number" {
		return nil, malformed("v", "want a number, got %s", typeName(v[0]))
	}
	if n, err := strconv.Atoi(v); err != nil || n != Version {
		return nil, fmt.Errorf("%w: v is %s, want %d", ErrVersion, v, Version)
	}
	if unknown != "" {
		return nil, malformed(unknown, "unknown field")
	}

	e := &Envelope{V: Version}
	for i := fID; i < nFields; i++ {
		if raw[i].e == 0 {
			switch i {
			case fOld, fModified, fPos, fSeq: // optional; validate checks old and pos
				continue
			}
			return nil, malformed(fieldNames[i], "missing")
		}
		p.i = raw[i].s
		if err := p.field(e, i); err != nil {
			return nil, err
		}
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// field decodes the value at p.i into field i of e.
func (p *oldParser) field(e *Envelope, i int) error {
	name := fieldNames[i]
	want := "string"
	switch i {
	case fPK, fRow, fOld:
		want = "object"
	case fModified:
		want = "array"
	}
	if got := typeName(p.peek()); got != want {
		return malformed(name, "want %s, got %s", want, got)
	}
	var err error
	switch i {
	case fID:
		e.ID = p.str()
	case fSource:
		e.Source = intern(p.str())
	case fSchema:
		e.Schema = p.str()
	case fTable:
		e.Table = p.str()
	case fModel:
		e.Model = p.str()
	case fOp:
		e.Op = intern(p.str())
	case fPK:
		e.PK, err = p.row(name)
	case fRow:
		e.Row, err = p.row(name)
	case fOld:
		e.Old, err = p.row(name)
	case fModified:
		e.Modified, err = p.strings(name)
	case fTS:
		e.TS, err = parseTS(p.str())
	case fPos:
		e.Pos = p.str()
	case fSeq:
		e.Seq = p.str()
	}
	return err
}

// oldParser walks a payload that json.Valid has already accepted, so it only
// has to find where things start and end, never to report syntax errors.
// s and b hold the same bytes: strings are cut from s and raw values from b,
// which saves an allocation per column.
type oldParser struct {
	s string
	b []byte
	i int
}

func (p *oldParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next token, 0 at the end.
func (p *oldParser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// object calls fn for each member of the object at p.i, with p.i at the
// member's value; fn must consume the value.
func (p *oldParser) object(fn func(key string) error) error {
	p.peek()
	p.i++ // {
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		p.peek()
		key := p.str()
		p.peek()
		p.i++ // :
		p.ws()
		if err := fn(key); err != nil {
			return err
		}
		c := p.peek()
		p.i++ // , or }
		if c == '}' {
			return nil
		}
	}
}

// str consumes the string at p.i and returns its value.
func (p *oldParser) str() string {
	p.ws()
	start := p.i
	p.skipString()
	raw := p.s[start:p.i]
	if strings.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	var v string
	_ = json.Unmarshal(p.b[start:p.i], &v) // valid by construction
	return v
}

func (p *oldParser) skipString() {
	p.i++ // opening quote
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\\':
			p.i += 2
		case '"':
			p.i++
			return
		default:
			p.i++
		}
	}
}

// skip consumes the value at p.i.
func (p *oldParser) skip() { p.value() }

// value consumes the value at p.i and returns its bytes, compacted.
func (p *oldParser) value() []byte {
	p.ws()
	start, depth, spaced := p.i, 0, false
loop:
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			p.skipString()
			if depth == 0 {
				break loop
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // end of the enclosing container
				break loop
			}
			depth--
			if depth == 0 {
				p.i++
				break loop
			}
		case ',':
			if depth == 0 {
				break loop
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				break loop
			}
			spaced = true
		}
		p.i++
	}
	v := p.b[start:p.i:p.i] // capped: appending to it cannot clobber the payload
	if spaced {
		v = appendCompact(nil, v)
	}
	return v
}

// row decodes the object at p.i into a Row.
func (p *oldParser) row(field string) (Row, error) {
	r := make(Row, 8)
	err := p.object(func(col string) error {
		if _, dup := r[col]; dup {
			return malformed(field, "column %q repeated", col)
		}
		r[col] = p.value()
		return nil
	})
	return r, err
}

// strings decodes the array of strings at p.i; an empty array gives nil.
func (p *oldParser) strings(field string) ([]string, error) {
	var out []string
	p.peek()
	p.i++ // [
	if p.peek() == ']' {
		p.i++
		return nil, nil
	}
	for {
		if c := p.peek(); c != '"' {
			return nil, malformed(field, "element %d: want string, got %s", len(out), typeName(c))
		}
		out = append(out, p.str())
		c := p.peek()
		p.i++
		if c == ']' {
			return out, nil
		}
	}
}
