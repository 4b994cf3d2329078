package eventwire

import (
	"context"

	"github.com/rowgear/rowgear/events"
)

type decodedKey struct{}

// decoded maps a payload's first byte to its envelope (and length, so
// that a sub-slice is not taken for the whole).
type decoded map[*byte]struct {
	n  int
	ev *events.Envelope
}

// WithDecoded returns ctx carrying evs as the decoding of payloads (the
// same slices, not copies): middleware that decoded a job's payload hands
// it down so that DecodeContext further in does not decode it again. The
// envelopes are shared from then on: treat them as read-only.
func WithDecoded(ctx context.Context, payloads [][]byte, evs []*events.Envelope) context.Context {
	m := make(decoded, len(payloads))
	for i, p := range payloads {
		if len(p) > 0 {
			m[&p[0]] = struct {
				n  int
				ev *events.Envelope
			}{len(p), evs[i]}
		}
	}
	return context.WithValue(ctx, decodedKey{}, m)
}

// DecodeContext is Decode, but returns the envelope ctx carries for
// exactly this payload (WithDecoded) without decoding it again.
func DecodeContext(ctx context.Context, payload []byte) (*events.Envelope, error) {
	if m, ok := ctx.Value(decodedKey{}).(decoded); ok && len(payload) > 0 {
		if e, ok := m[&payload[0]]; ok && e.n == len(payload) {
			return e.ev, nil
		}
	}
	return events.Decode(payload)
}

type splitKey struct{}

type split struct {
	first *byte
	n     int
	envs  [][]byte
}

// WithSplit returns ctx carrying envs as SplitBatch's answer for workload
// (the same slice): SplitBatchContext further in does not split it again.
func WithSplit(ctx context.Context, workload []byte, envs [][]byte) context.Context {
	if len(workload) == 0 {
		return ctx
	}
	return context.WithValue(ctx, splitKey{}, split{&workload[0], len(workload), envs})
}

// SplitBatchContext is SplitBatch, but returns the envelopes ctx carries
// for exactly this workload (WithSplit) without splitting it again.
func SplitBatchContext(ctx context.Context, workload []byte) ([][]byte, error) {
	if s, ok := ctx.Value(splitKey{}).(split); ok && len(workload) > 0 && s.first == &workload[0] && s.n == len(workload) {
		return s.envs, nil
	}
	return SplitBatch(workload)
}
