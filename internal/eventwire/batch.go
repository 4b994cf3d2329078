// Package eventwire carries row events between rowgear's own layers: the
// batch job's workload (the bridge writes it, the worker splits it), and a
// job's decoding handed down the middleware chain so that it is done once.
package eventwire

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/rowgear/rowgear/events"
)

// EncodeBatch returns the workload of a batch job: a JSON array of the
// events' envelopes, each byte for byte as its own job would carry it, in
// order. It does not check them.
func EncodeBatch(envelopes [][]byte) []byte {
	n := 2
	for _, e := range envelopes {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range envelopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// SplitBatch returns the envelopes of a batch job's workload, each the
// exact bytes of one array element (sub-slices of data), for Decode. It
// checks the JSON syntax and that the array holds 1 to events.MaxBatch objects;
// the envelopes themselves are Decode's to check. Errors wrap
// events.ErrMalformed and give the element's index.
func SplitBatch(data []byte) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("%w: batch: %w", events.ErrMalformed, err)
	}
	if tok.Kind() != '[' {
		return nil, fmt.Errorf("%w: batch: want a JSON array of envelopes, got %s", events.ErrMalformed, tok.Kind())
	}
	var out [][]byte
	for dec.PeekKind() != ']' {
		start := dec.InputOffset()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: batch element %d: %w", events.ErrMalformed, len(out), err)
		}
		if v.Kind() != '{' {
			return nil, fmt.Errorf("%w: batch element %d: want an envelope (object), got %s", events.ErrMalformed, len(out), v.Kind())
		}
		if len(out) == events.MaxBatch {
			return nil, fmt.Errorf("%w: batch: more than %d events", events.ErrMalformed, events.MaxBatch)
		}
		// The element's own bytes, without the separator before it.
		elem := bytes.TrimLeft(data[start:dec.InputOffset()], " \t\r\n,")
		out = append(out, elem)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: batch: %w", events.ErrMalformed, err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: batch: data after the array", events.ErrMalformed)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: batch: no events", events.ErrMalformed)
	}
	return out, nil
}
