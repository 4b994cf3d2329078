// Package funcname checks and splits the gearman function names rowgear
// mounts and submits: <namespace>.<Model>.<op|job> (events.FuncName makes
// them) and queue.<name> for the message queue.
package funcname

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by errors about a gearman function name or its
// parts.
var ErrInvalid = errors.New("events: bad function name")

// Length limits. gearmand accepts function names up to 512 bytes; these
// leave room and catch runaway input.
const (
	MaxPartLen      = 64  // model, op or job name
	MaxNamespaceLen = 128 // namespace
)

// QueuePrefix starts the function names of the message queue.
const QueuePrefix = "queue."

// Check reports whether events.FuncName's parts make a name Parse takes
// back: model and op/job are non-empty names of letters, digits, _
// and -, at most MaxPartLen bytes; the namespace is one or more such names
// joined by dots, at most MaxNamespaceLen bytes.
func Check(namespace, model, opOrJob string) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("%w: namespace: %w", ErrInvalid, err)
	}
	if err := CheckPart(model); err != nil {
		return fmt.Errorf("%w: model: %w", ErrInvalid, err)
	}
	if err := CheckPart(opOrJob); err != nil {
		return fmt.Errorf("%w: op or job: %w", ErrInvalid, err)
	}
	return nil
}

// Parse splits a name made by events.FuncName. The namespace may contain
// dots, the model and op/job may not, so the name splits at its last two.
func Parse(name string) (namespace, model, opOrJob string, err error) {
	i := strings.LastIndexByte(name, '.')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(name[:i], '.')
	}
	if j < 0 {
		return "", "", "", fmt.Errorf("%w: %q is not <namespace>.<Model>.<op|job>", ErrInvalid, name)
	}
	namespace, model, opOrJob = name[:j], name[j+1:i], name[i+1:]
	if err := Check(namespace, model, opOrJob); err != nil {
		return "", "", "", fmt.Errorf("%q: %w", name, err)
	}
	return namespace, model, opOrJob, nil
}

// Queue returns the gearman function of the message queue name:
// "queue.<name>", as sfGearmanPlugin names it.
func Queue(name string) string {
	return QueuePrefix + name
}

func checkNamespace(ns string) error {
	if len(ns) > MaxNamespaceLen {
		return fmt.Errorf("%d bytes, at most %d", len(ns), MaxNamespaceLen)
	}
	for part := range strings.SplitSeq(ns, ".") {
		if err := CheckPart(part); err != nil {
			return err
		}
	}
	return nil
}

// CheckPart validates one dot-free part of a function name (a model name
// in an envelope, say).
func CheckPart(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > MaxPartLen {
		return fmt.Errorf("%d bytes, at most %d", len(s), MaxPartLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%q: byte %q not allowed (letters, digits, _ and - only)", s, c)
		}
	}
	return nil
}
