// Package gearman is rowgear's gearman layer: a client (Task, Background,
// priorities) that survives gearmand restarts, a worker runner, and the
// seed's message queue (queue.<name> jobs).
//
// The client is built over mikespook/gearman-go and wraps its flaws: a
// connection that fails or times out is discarded, never reused; gearmand's
// ERROR packets reach the caller; several goroutines share a pool of
// connections. The worker side speaks the protocol itself (see proto.go).
package gearman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	// ErrNotSerialized: a payload is a raw string where a value was asked for.
	ErrNotSerialized = errors.New("gearman: payload is not a serialized value")
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

// serialMagic starts a serialized (JSON) payload. Raw strings exchanged with
// non-Go clients never start with a NUL byte in practice, so they pass
// untouched, as the seed's sfGearman::serialize did for PHP.
var serialMagic = []byte("\x00RG1")

// Serialize encodes a workload or result: []byte and string are sent raw,
// nil as empty, anything else as a serialized JSON value.
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
	return append(append(make([]byte, 0, len(serialMagic)+len(b)), serialMagic...), b...), nil
}

// IsSerialized reports whether data was made by Serialize from a value.
func IsSerialized(data []byte) bool { return bytes.HasPrefix(data, serialMagic) }

// Unserialize decodes data into v. A serialized value decodes into any
// matching Go value; a raw payload decodes only into *string or *[]byte.
func Unserialize(data []byte, v any) error {
	if IsSerialized(data) {
		if err := json.Unmarshal(data[len(serialMagic):], v); err != nil {
			return fmt.Errorf("gearman: unserialize into %T: %w", v, err)
		}
		return nil
	}
	switch p := v.(type) {
	case *string:
		*p = string(data)
	case *[]byte:
		*p = append([]byte(nil), data...)
	case *any:
		*p = string(data)
	default:
		return fmt.Errorf("%w: cannot decode %d raw bytes into %T", ErrNotSerialized, len(data), v)
	}
	return nil
}
