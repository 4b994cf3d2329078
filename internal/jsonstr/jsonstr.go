// Package jsonstr writes JSON strings the way rowgear's event envelope
// carries them, compacts JSON values, and names JSON kinds in error
// messages.
package jsonstr

const hexDigits = "0123456789abcdef"

// Append appends s as a JSON string in the envelope's form. s must be
// valid UTF-8. Unlike encoding/json it does not escape <, > and &: the
// payload is never HTML. The event codec and binlogbridge's values use it.
func Append(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// KindName names the JSON kind that starts with c (a jsontext.Kind), for
// an error message.
func KindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid JSON"
}

// AppendCompact appends the valid JSON value v without insignificant
// whitespace.
func AppendCompact(b, v []byte) []byte {
	if !hasSpace(v) {
		return append(b, v...)
	}
	inStr := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inStr:
			if c == '\\' {
				b = append(b, c, v[i+1])
				i++
				continue
			}
			inStr = c != '"'
		case c == '"':
			inStr = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		b = append(b, c)
	}
	return b
}

// hasSpace reports whether v has a whitespace byte anywhere; inside strings
// they are escaped, except a literal space, so this is a cheap upper bound.
func hasSpace(v []byte) bool {
	for _, c := range v {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}
