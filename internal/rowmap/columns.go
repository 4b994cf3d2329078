// Package rowmap converts between a row's column values in wire form (raw
// JSON, as the event envelope carries them) and the db-tagged fields of a Go
// struct: events.Row.Scan and events.RowOf are its public face; the
// registry and the test kit read a model's columns (Columns) and key (PK)
// here. The tag grammar and the conversions are documented there.
package rowmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// ErrStruct is wrapped by errors about a Go type that cannot map to a row:
// not a struct, a bad db tag, an unsupported field type.
var ErrStruct = errors.New("events: unsupported struct")

// Column is one db-tagged field of a struct, as Columns reports it (see
// events.Row.Scan for the tag).
type Column struct {
	Name  string       // column name
	Field string       // Go field name
	Index []int        // field index path, for reflect.Value.FieldByIndex
	Type  reflect.Type // field type
	PK    bool         // tagged pk
	Date  bool         // tagged date
}

// structInfo is what Columns computes once per type.
type structInfo struct {
	typ    reflect.Type
	cols   []Column
	codecs []codec // parallel to cols
	err    error
}

var infoCache sync.Map // reflect.Type → *structInfo

// Columns lists the db-tagged fields of struct type t (or pointer to
// struct), in field order. The result is computed once per type and cached;
// the caller must not modify it.
func Columns(t reflect.Type) ([]Column, error) {
	info := infoOf(t)
	return info.cols, info.err
}

func infoOf(t reflect.Type) *structInfo {
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v, ok := infoCache.Load(t); ok {
		return v.(*structInfo)
	}
	info := buildInfo(t)
	v, _ := infoCache.LoadOrStore(t, info)
	return v.(*structInfo)
}

func buildInfo(t reflect.Type) *structInfo {
	info := &structInfo{typ: t}
	if t == nil || t.Kind() != reflect.Struct {
		info.err = fmt.Errorf("%w: %v is not a struct", ErrStruct, t)
		return info
	}
	seen := map[string]string{} // column → field
	for _, f := range reflect.VisibleFields(t) {
		tag, ok := f.Tag.Lookup("db")
		if !ok || tag == "-" {
			continue
		}
		col, err := parseTag(t, f, tag)
		if err == nil {
			err = reachable(t, f)
		}
		if err == nil && seen[col.Name] != "" {
			err = fmt.Errorf("%w: %v: fields %s and %s both map to column %q",
				ErrStruct, t, seen[col.Name], f.Name, col.Name)
		}
		var c codec
		if err == nil {
			c, err = codecOf(f.Type, col.Date)
			if err != nil {
				err = fmt.Errorf("%w: %v.%s: %w", ErrStruct, t, f.Name, err)
			}
		}
		if err != nil {
			info.err = err
			return info
		}
		seen[col.Name] = f.Name
		info.cols = append(info.cols, col)
		info.codecs = append(info.codecs, c)
	}
	return info
}

func parseTag(t reflect.Type, f reflect.StructField, tag string) (Column, error) {
	name, opts, _ := strings.Cut(tag, ",")
	col := Column{Name: name, Field: f.Name, Index: f.Index, Type: f.Type}
	if name == "" {
		return col, fmt.Errorf("%w: %v.%s: db tag %q names no column", ErrStruct, t, f.Name, tag)
	}
	if !f.IsExported() {
		return col, fmt.Errorf("%w: %v.%s: db-tagged field is unexported", ErrStruct, t, f.Name)
	}
	for opt := range strings.SplitSeq(opts, ",") {
		switch opt {
		case "":
		case "pk":
			col.PK = true
		case "date":
			col.Date = true
		default:
			return col, fmt.Errorf("%w: %v.%s: unknown db tag option %q", ErrStruct, t, f.Name, opt)
		}
	}
	return col, nil
}

// reachable refuses fields promoted through an embedded pointer: reaching
// them would need allocating (Scan) or could hit nil (RowOf).
func reachable(t reflect.Type, f reflect.StructField) error {
	for i := range len(f.Index) - 1 {
		e := t.FieldByIndex(f.Index[:i+1])
		if e.Type.Kind() == reflect.Pointer {
			return fmt.Errorf("%w: %v.%s: promoted through embedded pointer %s", ErrStruct, t, f.Name, e.Name)
		}
	}
	return nil
}

// Scan is events.Row.Scan: r's columns into the fields of the struct
// dst points to.
func Scan(r map[string]json.RawMessage, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("%w: Scan needs a non-nil pointer to a struct, got %T", ErrStruct, dst)
	}
	info := infoOf(v.Type())
	if info.err != nil {
		return info.err
	}
	v = v.Elem()
	for i, c := range info.cols {
		raw, ok := r[c.Name]
		if !ok {
			continue
		}
		raw = bytes.TrimSpace(raw) // only in a hand-made row: Decode compacts
		cd := info.codecs[i]
		var err error
		if isNull(raw) && !cd.null {
			err = errors.New("NULL into a field that cannot hold it (use a pointer or sql.Null type)")
		} else {
			err = cd.dec(v.FieldByIndex(c.Index), raw)
		}
		if err != nil {
			return info.valueErr(c, err)
		}
	}
	return nil
}

// ErrValue is wrapped by errors about a column value that does not convert
// to or from its Go field.
var ErrValue = errors.New("events: bad column value")

func (info *structInfo) valueErr(c Column, err error) error {
	return fmt.Errorf("%w: column %q, field %v.%s (%v): %w", ErrValue, c.Name, info.typ, c.Field, c.Type, err)
}

// RowOf is events.RowOf: the reverse of Scan.
func RowOf(src any) (map[string]json.RawMessage, error) {
	return rowOf(src, false)
}

// PK is RowOf limited to the columns tagged pk. A struct without one is an
// error, and so is a NULL key column.
func PK(src any) (map[string]json.RawMessage, error) {
	return rowOf(src, true)
}

func rowOf(src any, pkOnly bool) (map[string]json.RawMessage, error) {
	v := reflect.ValueOf(src)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("%w: nil %T", ErrStruct, src)
		}
		v = v.Elem()
	}
	info := infoOf(v.Type())
	if info.err != nil {
		return nil, info.err
	}
	if !v.CanAddr() { // pointer-receiver MarshalJSON needs an addressable value
		a := reflect.New(v.Type()).Elem()
		a.Set(v)
		v = a
	}
	n := len(info.cols)
	if pkOnly {
		n = 0
		for _, c := range info.cols {
			if c.PK {
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %v has no field tagged db:\"…,pk\"", ErrStruct, info.typ)
		}
	}
	// All values share one buffer; ends[i] is where value i stops.
	var buf []byte
	ends := make([]int, 0, n)
	cols := make([]int, 0, n)
	for i, c := range info.cols {
		if pkOnly && !c.PK {
			continue
		}
		var err error
		buf, err = info.codecs[i].enc(buf, v.FieldByIndex(c.Index))
		if err == nil && pkOnly && isNull(buf[last(ends):]) {
			err = errors.New("primary-key column is NULL")
		}
		if err != nil {
			return nil, info.valueErr(c, err)
		}
		ends = append(ends, len(buf))
		cols = append(cols, i)
	}
	r := make(map[string]json.RawMessage, n)
	start := 0
	for j, i := range cols {
		r[info.cols[i].Name] = json.RawMessage(buf[start:ends[j]:ends[j]])
		start = ends[j]
	}
	return r, nil
}

func last(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

func isNull(raw []byte) bool { return string(raw) == "null" }

var (
	rawType      = reflect.TypeFor[json.RawMessage]()
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	unmarshaler  = reflect.TypeFor[json.Unmarshaler]()
	marshaler    = reflect.TypeFor[json.Marshaler]()
)

// isSQLNull reports whether t is one of database/sql's Null types: a struct
// of a value field and Valid bool (NullString … NullTime, Null[T]).
func isSQLNull(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == "database/sql" &&
		strings.HasPrefix(t.Name(), "Null") && t.NumField() == 2 &&
		t.Field(1).Name == "Valid" && t.Field(1).Type.Kind() == reflect.Bool
}
