package gearman

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/rowgear/rowgear/internal/phpser"
)

// Codec encodes workloads and results and decodes them into Go values.
// JSON (the default) is rowgear's own; PHP speaks sfGearmanPlugin's
// serialize(), for clients and workers of a PHP application moving over.
// A client, a worker and a queue pick one per function (WithCodec,
// WithCodecFor, WithWorkerCodecFor), so both can run side by side.
type Codec interface {
	// Name is "json" or "php", as in gearman.yml's serializer.
	Name() string
	Encode(v any) ([]byte, error)
	Decode(data []byte, v any) error
}

var (
	// JSON is Serialize and Unserialize: strings raw, other values as JSON.
	JSON Codec = jsonCodec{}
	// PHP is sfGearmanPlugin's sfGearman::serialize and ::unserialize: a
	// string goes raw, any other value (int, float, bool, nil, slice, map,
	// struct) as PHP's serialize() writes it, so unserialize() in PHP
	// returns a PHP int, float, bool, null or array (a struct becomes an
	// array keyed by its JSON field names). Decoding reads a serialized
	// value when the payload is one, else the raw payload as a string, as
	// sfGearman::unserialize does; a raw number also decodes into a number.
	// Hostile input (huge lengths or counts, deep nesting, objects other
	// than stdClass, references) is an error, never a crash.
	PHP Codec = phpCodec{}
)

type jsonCodec struct{}

func (jsonCodec) Name() string                    { return "json" }
func (jsonCodec) Encode(v any) ([]byte, error)    { return Serialize(v) }
func (jsonCodec) Decode(data []byte, v any) error { return Unserialize(data, v) }

type phpCodec struct{}

func (phpCodec) Name() string { return "php" }

func (phpCodec) Encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	b, err := phpser.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("gearman: serialize %T: %w", v, err)
	}
	return b, nil
}

func (phpCodec) Decode(data []byte, v any) error {
	tree, perr := phpser.Unmarshal(data)
	switch p := v.(type) {
	case *string:
		if s, ok := tree.(string); ok && perr == nil {
			*p = s
		} else {
			*p = string(data)
		}
		return nil
	case *[]byte:
		if s, ok := tree.(string); ok && perr == nil {
			*p = []byte(s)
		} else {
			*p = append([]byte(nil), data...)
		}
		return nil
	case *any:
		switch {
		case perr == nil:
			*p = tree
		case len(data) == 0:
			*p = nil
		default:
			*p = string(data)
		}
		return nil
	}
	if perr != nil {
		if len(data) == 0 {
			return nil
		}
		// sfGearman::serialize sends a PHP int or float raw: "42", "1.5".
		if _, err := strconv.ParseFloat(string(data), 64); err == nil {
			return unmarshal(data, v)
		}
		if !phpser.Valid(data) {
			return fmt.Errorf("%w: %d bytes starting %q are neither PHP-serialized nor a number, cannot decode into %T", ErrNotSerialized, len(data), head(data), v)
		}
		return fmt.Errorf("gearman: unserialize into %T: %d bytes starting %q: %w", v, len(data), head(data), perr)
	}
	raw, err := json.Marshal(forJSON(tree))
	if err != nil {
		return fmt.Errorf("gearman: unserialize into %T: %w", v, err)
	}
	return unmarshal(raw, v)
}

// forJSON readies a decoded PHP value for encoding/json: an empty PHP
// array becomes null (PHP cannot tell an empty list from an empty map, so
// it fits a slice, a map and a struct alike), and a float that is a whole
// number stays one (json would write 1 for 1.0 anyway).
func forJSON(t any) any {
	switch x := t.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = forJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = forJSON(x[k])
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return x // json refuses it, with an error naming the value
		}
	}
	return t
}
