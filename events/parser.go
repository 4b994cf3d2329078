package events

import (
	"encoding/json"
	"strings"
)

// parser walks a payload that the syntax pass has already accepted, so it
// only has to find where things start and end, never to report syntax errors.
// s and b hold the same bytes: strings are cut from s and raw values from b,
// which saves an allocation per column.
type parser struct {
	s string
	b []byte
	i int
}

func (p *parser) ws() {
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
func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// object calls fn for each member of the object at p.i, with p.i at the
// member's value; fn must consume the value.
func (p *parser) object(fn func(key string) error) error {
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
func (p *parser) str() string {
	p.ws()
	start := p.i
	p.skipString()
	return p.strAt(span{start, p.i})
}

// strAt returns the value of the string token at sp.
func (p *parser) strAt(sp span) string {
	raw := p.s[sp.start:sp.end]
	if strings.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	var v string
	_ = json.Unmarshal(p.b[sp.start:sp.end], &v) // valid by construction
	return v
}

func (p *parser) skipString() {
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

// value consumes the value at p.i and returns its bytes, compacted.
func (p *parser) value() []byte {
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

// row decodes the object f, field field, into a Row: from the columns the
// syntax pass recorded, or, if it had no room for them all, by walking the
// object again.
func (p *parser) row(field string, f *fieldSpan, sc *syntax) (Row, error) {
	if !f.colsOK {
		return p.walkRow(field)
	}
	cols := sc.cols[f.cols.start:f.cols.end]
	r := make(Row, max(len(cols), 8))
	for _, c := range cols {
		col := p.strAt(c.key)
		if _, dup := r[col]; dup {
			return r, malformed(field, "column %q repeated", col)
		}
		v := p.b[c.val.start:c.val.end:c.val.end] // capped, as in value
		if c.spaced {
			v = appendCompact(nil, v)
		}
		r[col] = v
	}
	return r, nil
}

// walkRow decodes the object at p.i into a Row.
func (p *parser) walkRow(field string) (Row, error) {
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
func (p *parser) strings(field string) ([]string, error) {
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
