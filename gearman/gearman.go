// Package gearman is rowgear's gearman layer: a client (Task, Background,
// priorities) that survives gearmand restarts, a worker runner, and the
// seed's message queue (queue.<name> jobs).
//
// The client is built over mikespook/gearman-go and wraps its flaws: a
// connection that fails or times out is discarded, never reused; gearmand's
// ERROR packets reach the caller; several goroutines share a pool of
// connections. The worker side speaks the protocol itself (see proto.go).
//
// # Workloads and results
//
// A workload (Client.Task, Client.Background, Queue.Put) or a handler's
// result is sent as Serialize writes it:
//
//   - a string or a []byte: raw, byte for byte, as the seed's
//     sfGearman::serialize did (PHP's reverse gets "Hello!", not "\"Hello!\"");
//   - nil: an empty payload;
//   - any other value (a struct, a slice, a map, a number, a bool, a named
//     string type): plain JSON from encoding/json, so a PHP client or worker
//     reads it with json_decode.
//
// Job.Decode, Result.Decode, Message.Decode and TaskAs read a payload as
// Unserialize does, and there the target's type decides, never the payload:
// *string and *[]byte get the payload raw; any other type is decoded from
// JSON, so a PHP peer's json_encode output decodes into a struct, a slice
// or a map. The payload itself carries no marker: a raw string that happens
// to be JSON ("42", "true", "[1]") decodes as that JSON into a non-string
// target, and a raw string that is not JSON gives ErrNotSerialized. *any is
// the one guess: the JSON value when the payload is JSON, else the string.
// Decode into the type the other side sent: a Go handler returning a named
// string type sends JSON ("\"x\""), which decodes into that type, not into
// *string.
//
// For PHP: json_encode an array or object and json_decode what comes back;
// send and return plain strings as they are. PHP's json_encode writes an
// empty array as [], which does not decode into a Go struct or map: use
// (object)[] or JSON_FORCE_OBJECT where Go expects an object. Payloads that
// older rowgear versions prefixed with "\x00RG1" still decode.
//
// # sfGearmanPlugin peers
//
// That is the JSON codec, the default. PHP code written for
// sfGearmanPlugin serialize()s instead: give those functions the PHP codec
// (WithCodec, WithCodecFor, WithWorkerCodec, WithWorkerCodecFor; in
// gearman.yml, serializer: php), and the plugin's @namespace suffix with
// WithFunctionSuffix and WithWorkerFunctionSuffix. A PHP-serialized payload
// decoded as JSON gives ErrNotSerialized saying it is PHP-serialized.
//
// # Options
//
// Options check their arguments (WithConcurrency(0), WithCodec(nil), a
// unique key over 64 bytes): a bad client option is the error of each of
// the client's calls, a bad worker option Run's, a bad submit option that
// submit's; each names the option.
package gearman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rowgear/rowgear/internal/phpser"
)

// Priority of a job: gearmand hands out HIGH jobs before NORMAL before LOW.
type Priority int

// Priorities, as the seed's sfGearman::HIGH / LOW.
const (
	Normal Priority = iota
	Low
	High
)

func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case High:
		return "high"
	default:
		return "normal"
	}
}

var (
	// ErrUnavailable: no configured gearmand accepted the request.
	ErrUnavailable = errors.New("gearman: no server available")
	// ErrServer: gearmand answered with an ERROR packet (queue full, …).
	ErrServer = errors.New("gearman: server error")
	// ErrJobFailed: the worker failed the job (WORK_FAIL).
	ErrJobFailed = errors.New("gearman: job failed")
	// ErrTimeout: a queue Get waited its whole timeout for a message.
	ErrTimeout = errors.New("gearman: timed out")
	// ErrNotSerialized: a payload that is not JSON (a raw string) was asked
	// to decode into a value other than a string, []byte or any.
	ErrNotSerialized = errors.New("gearman: payload is not JSON")
)

// JobError is the error of a failed foreground job; it matches ErrJobFailed.
type JobError struct {
	Function, Handle string
	Msg              string // the worker's reason, sent as WORK_WARNING
}

func (e *JobError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("gearman: job %s (%s) failed", e.Function, e.Handle)
	}
	return fmt.Sprintf("gearman: job %s (%s) failed: %s", e.Function, e.Handle, e.Msg)
}

func (e *JobError) Unwrap() error { return ErrJobFailed }

// legacyMagic prefixed JSON values before rowgear sent plain JSON. Jobs
// queued then (a persistent queue, dead letters) still decode.
var legacyMagic = []byte("\x00RG1")

// Serialize encodes a workload or result: nil as empty, string and []byte
// raw (byte for byte, never quoted), anything else as plain JSON
// (encoding/json), which PHP's json_decode reads. See the package
// documentation for how the other side decodes it.
func Serialize(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("gearman: serialize %T: %w", v, err)
	}
	return b, nil
}

// Unserialize decodes data into v, which must be a pointer. The target's
// type decides, never the payload:
//
//   - *string and *[]byte get the payload raw, byte for byte, JSON or not;
//   - *any gets the JSON value when the payload is JSON (numbers as
//     float64, objects as map[string]any), else the raw payload as a string,
//     and nil for an empty payload;
//   - any other target is decoded from JSON (encoding/json); an empty
//     payload counts as null, which leaves a struct unchanged and sets a
//     pointer, slice or map to nil. A payload that is not JSON gives an
//     error wrapping ErrNotSerialized.
func Unserialize(data []byte, v any) error {
	if rest, ok := bytes.CutPrefix(data, legacyMagic); ok {
		return unmarshal(rest, v)
	}
	switch p := v.(type) {
	case *string:
		*p = string(data)
		return nil
	case *[]byte:
		*p = append([]byte(nil), data...)
		return nil
	case *any:
		if !json.Valid(data) {
			*p = nil
			if len(data) > 0 {
				*p = string(data)
			}
			return nil
		}
	}
	if len(data) == 0 {
		data = []byte("null")
	}
	if !json.Valid(data) {
		if _, err := phpser.Unmarshal(data); err == nil || phpser.Valid(data) {
			return fmt.Errorf("%w: %d bytes starting %q are PHP-serialized (serialize()), not JSON, cannot decode into %T: set serializer: php for this function", ErrNotSerialized, len(data), head(data), v)
		}
		return fmt.Errorf("%w: %d bytes starting %q cannot decode into %T", ErrNotSerialized, len(data), head(data), v)
	}
	return unmarshal(data, v)
}

func unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("gearman: unserialize into %T: %w", v, err)
	}
	return nil
}

// head is the start of a payload, for an error message.
func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
