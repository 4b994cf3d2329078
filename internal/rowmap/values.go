package rowmap

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowgear/rowgear/internal/jsonstr"
)

// codec converts one field between its wire form and Go.
type codec struct {
	dec  func(v reflect.Value, raw []byte) error // v is settable
	enc  func(b []byte, v reflect.Value) ([]byte, error)
	null bool // dec accepts null itself
}

// codecOf picks the conversion for a field of type t; date marks a DATE
// column.
func codecOf(t reflect.Type, date bool) (codec, error) {
	switch {
	case t == rawType:
		return codec{decRaw, encRaw, true}, nil
	case t == timeType:
		return codec{decTime, timeEncoder(date), false}, nil
	case t == durationType:
		return codec{decDuration, encDuration, false}, nil
	case t.Kind() == reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return codec{}, fmt.Errorf("pointer to pointer %v", t)
		}
		elem, err := codecOf(t.Elem(), date)
		if err != nil {
			return codec{}, err
		}
		return pointerCodec(t, elem), nil
	case isSQLNull(t):
		inner, err := codecOf(t.Field(0).Type, date)
		if err != nil {
			return codec{}, err
		}
		return sqlNullCodec(inner), nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return codec{decBool, encBool, false}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return codec{decInt, encInt, false}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return codec{decUint, encUint, false}, nil
	case reflect.Float32, reflect.Float64:
		return codec{decFloat, encFloat, false}, nil
	case reflect.String:
		return codec{decString, encString, false}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return codec{decBytes, encBytes, true}, nil
		}
	}
	if reflect.PointerTo(t).Implements(unmarshaler) &&
		(t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler)) {
		return codec{decJSON, encJSON, false}, nil
	}
	return codec{}, fmt.Errorf("unsupported field type %v", t)
}

func pointerCodec(t reflect.Type, elem codec) codec {
	return codec{
		dec: func(v reflect.Value, raw []byte) error {
			if isNull(raw) {
				v.SetZero()
				return nil
			}
			p := reflect.New(t.Elem())
			if err := elem.dec(p.Elem(), raw); err != nil {
				return err
			}
			v.Set(p)
			return nil
		},
		enc: func(b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, "null"...), nil
			}
			return elem.enc(b, v.Elem())
		},
		null: true,
	}
}

func sqlNullCodec(inner codec) codec {
	return codec{
		dec: func(v reflect.Value, raw []byte) error {
			if isNull(raw) {
				v.SetZero()
				return nil
			}
			if err := inner.dec(v.Field(0), raw); err != nil {
				return err
			}
			v.Field(1).SetBool(true)
			return nil
		},
		enc: func(b []byte, v reflect.Value) ([]byte, error) {
			if !v.Field(1).Bool() {
				return append(b, "null"...), nil
			}
			return inner.enc(b, v.Field(0))
		},
		null: true,
	}
}

// integer returns raw if it is a JSON number without fraction or exponent.
func integer(raw []byte) (string, error) {
	if jsonstr.KindName(first(raw)) != "number" {
		return "", fmt.Errorf("want an integer, got %s", jsonstr.KindName(first(raw)))
	}
	s := string(raw)
	if strings.ContainsAny(s, ".eE") {
		return "", fmt.Errorf("want an integer, got %s", s)
	}
	return s, nil
}

func first(raw []byte) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// rangeErr turns strconv's errors into a short message.
func rangeErr(s string, t reflect.Type, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%s overflows %v", s, t)
	}
	return fmt.Errorf("%s is not a %v", s, t)
}

func decInt(v reflect.Value, raw []byte) error {
	s, err := integer(raw)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(s, 10, v.Type().Bits())
	if err != nil {
		return rangeErr(s, v.Type(), err)
	}
	v.SetInt(n)
	return nil
}

func decUint(v reflect.Value, raw []byte) error {
	s, err := integer(raw)
	if err != nil {
		return err
	}
	if strings.HasPrefix(s, "-") {
		return fmt.Errorf("negative %s into unsigned %v", s, v.Type())
	}
	n, err := strconv.ParseUint(s, 10, v.Type().Bits())
	if err != nil {
		return rangeErr(s, v.Type(), err)
	}
	v.SetUint(n)
	return nil
}

func decBool(v reflect.Value, raw []byte) error {
	switch string(raw) {
	case "true":
		v.SetBool(true)
		return nil
	case "false":
		v.SetBool(false)
		return nil
	}
	s, err := integer(raw)
	if err != nil {
		return err
	}
	// MySQL's BOOL is TINYINT: any non-zero value is true. Compare the text,
	// so that no integer is out of range.
	v.SetBool(strings.TrimLeft(strings.TrimPrefix(s, "-"), "0") != "")
	return nil
}

func decFloat(v reflect.Value, raw []byte) error {
	s := string(raw)
	switch jsonstr.KindName(first(raw)) {
	case "number":
	case "string": // DECIMAL
		s = unquote(raw)
	default:
		return fmt.Errorf("want a number, got %s", jsonstr.KindName(first(raw)))
	}
	f, err := strconv.ParseFloat(s, v.Type().Bits())
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) { // ParseFloat takes "Inf", "NaN"
		return rangeErr(strconv.Quote(s), v.Type(), err)
	}
	v.SetFloat(f)
	return nil
}

func decString(v reflect.Value, raw []byte) error {
	switch jsonstr.KindName(first(raw)) {
	case "string":
		s := unquote(raw)
		if !utf8.ValidString(s) { // Decode refuses it; a hand-made row may not
			return errors.New("invalid UTF-8")
		}
		v.SetString(s)
	case "number":
		v.SetString(string(raw))
	default:
		return fmt.Errorf("want a string, got %s", jsonstr.KindName(first(raw)))
	}
	return nil
}

func decBytes(v reflect.Value, raw []byte) error {
	if isNull(raw) {
		v.SetZero()
		return nil
	}
	if jsonstr.KindName(first(raw)) != "string" {
		return fmt.Errorf("want a base64 string, got %s", jsonstr.KindName(first(raw)))
	}
	s := unquote(raw)
	if strings.ContainsAny(s, "\r\n") { // StdEncoding would skip them
		return errors.New("line break in base64")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("bad base64: %w", err)
	}
	v.SetBytes(b)
	return nil
}

func decRaw(v reflect.Value, raw []byte) error {
	if isNull(raw) {
		v.SetZero()
		return nil
	}
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return errors.New("invalid JSON or UTF-8")
	}
	v.SetBytes(append([]byte(nil), raw...)) // do not alias the envelope
	return nil
}

func decJSON(v reflect.Value, raw []byte) error {
	return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw)
}

// MySQL's zero date and datetime, which time.Parse refuses.
const (
	zeroDate     = "0000-00-00"
	zeroDateTime = "0000-00-00 00:00:00"
)

func decTime(v reflect.Value, raw []byte) error {
	if jsonstr.KindName(first(raw)) != "string" {
		return fmt.Errorf("want a DATE or DATETIME string, got %s", jsonstr.KindName(first(raw)))
	}
	s := unquote(raw)
	if s == zeroDate || strings.HasPrefix(s, zeroDateTime) && strings.Trim(s[len(zeroDateTime):], ".0") == "" {
		v.Set(reflect.ValueOf(time.Time{}))
		return nil
	}
	layout := time.DateTime // time.Parse takes a fraction after the seconds
	if len(s) == len(time.DateOnly) {
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return fmt.Errorf("want DATE %q or DATETIME \"%s[.ffffff]\", got %q", time.DateOnly, time.DateTime, s)
	}
	v.Set(reflect.ValueOf(t))
	return nil
}

func decDuration(v reflect.Value, raw []byte) error {
	if jsonstr.KindName(first(raw)) != "string" {
		return fmt.Errorf("want a TIME string, got %s", jsonstr.KindName(first(raw)))
	}
	d, err := parseTime(unquote(raw))
	if err != nil {
		return err
	}
	v.SetInt(int64(d))
	return nil
}

// parseTime reads MySQL TIME text: [-]H+:MM:SS[.ffffff].
func parseTime(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("want TIME [-]HHH:MM:SS[.ffffff] within ±838 hours, got %q", s)
	}
	rest, neg := strings.CutPrefix(s, "-")
	h, rest, ok1 := strings.Cut(rest, ":")
	m, rest, ok2 := strings.Cut(rest, ":")
	sec, frac, hasFrac := strings.Cut(rest, ".")
	if !ok1 || !ok2 || len(m) != 2 || len(sec) != 2 || hasFrac && (frac == "" || len(frac) > 9) {
		return bad()
	}
	var n [4]int64
	for i, part := range [...]string{h, m, sec, frac} {
		if part == "" && i == 3 {
			break
		}
		x, err := strconv.ParseUint(part, 10, 32) // digits only, no sign
		if err != nil || i == 0 && x > 838 || i > 0 && i < 3 && x > 59 {
			return bad()
		}
		n[i] = int64(x)
	}
	for range 9 - len(frac) {
		n[3] *= 10
	}
	d := time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute +
		time.Duration(n[2])*time.Second + time.Duration(n[3])
	if neg {
		d = -d
	}
	return d, nil
}

// unquote returns the value of the valid JSON string raw.
func unquote(raw []byte) string {
	if len(raw) >= 2 && strings.IndexByte(string(raw), '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func encInt(b []byte, v reflect.Value) ([]byte, error) {
	return strconv.AppendInt(b, v.Int(), 10), nil
}

func encUint(b []byte, v reflect.Value) ([]byte, error) {
	return strconv.AppendUint(b, v.Uint(), 10), nil
}

func encBool(b []byte, v reflect.Value) ([]byte, error) {
	if v.Bool() {
		return append(b, '1'), nil
	}
	return append(b, '0'), nil
}

func encFloat(b []byte, v reflect.Value) ([]byte, error) {
	f := v.Float()
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("%v has no JSON form", f)
	}
	format := byte('f') // as encoding/json: plain unless very small or large
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, v.Type().Bits()), nil
}

func encString(b []byte, v reflect.Value) ([]byte, error) {
	s := v.String()
	if !utf8.ValidString(s) {
		return b, errors.New("invalid UTF-8")
	}
	return jsonstr.Append(b, s), nil
}

func encBytes(b []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(b, "null"...), nil
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v.Bytes())
	return append(b, '"'), nil
}

func encRaw(b []byte, v reflect.Value) ([]byte, error) {
	raw := v.Bytes()
	if raw == nil {
		return append(b, "null"...), nil
	}
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return b, errors.New("invalid JSON or UTF-8")
	}
	return jsonstr.AppendCompact(b, raw), nil
}

func encJSON(b []byte, v reflect.Value) ([]byte, error) {
	m, ok := v.Interface().(json.Marshaler)
	if !ok {
		m = v.Addr().Interface().(json.Marshaler)
	}
	raw, err := m.MarshalJSON()
	if err != nil {
		return b, err
	}
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return b, errors.New("MarshalJSON returned invalid JSON")
	}
	return jsonstr.AppendCompact(b, raw), nil
}

func timeEncoder(date bool) func([]byte, reflect.Value) ([]byte, error) {
	return func(b []byte, v reflect.Value) ([]byte, error) {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			if date {
				return append(b, `"`+zeroDate+`"`...), nil
			}
			return append(b, `"`+zeroDateTime+`"`...), nil
		}
		t = t.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("year %d out of range", y)
		}
		layout := `"` + time.DateTime + `"`
		switch {
		case date:
			layout = `"` + time.DateOnly + `"`
		case t.Nanosecond() >= 1000: // MySQL keeps microseconds
			layout = `"` + time.DateTime + `.000000"`
		}
		return t.AppendFormat(b, layout), nil
	}
}

func encDuration(b []byte, v reflect.Value) ([]byte, error) {
	d := time.Duration(v.Int())
	b = append(b, '"')
	if d < 0 {
		b = append(b, '-')
		if d == math.MinInt64 {
			return b, errors.New("duration out of TIME range")
		}
		d = -d
	}
	h, m, s, us := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second, d%time.Second/time.Microsecond
	if h < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(h), 10)
	b = append(b, ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10))
	if us != 0 {
		b = append(b, '.')
		b = fmt.Appendf(b, "%06d", us)
	}
	return append(b, '"'), nil
}
