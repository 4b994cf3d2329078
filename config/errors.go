package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid matches (errors.Is) every *Error: the file was read but its
// content is wrong.
var ErrInvalid = errors.New("config: invalid gearman.yml")

// ErrUnknownServer is returned by ServerAddrs for a connection name that
// gearman.yml does not define.
var ErrUnknownServer = errors.New("config: unknown gearman server")

// ErrUnknownSet is returned by WorkerSet and DBWorkerSet for a set name that
// gearman.yml does not define.
var ErrUnknownSet = errors.New("config: unknown worker set")

// Error is a problem in gearman.yml, located so the user can fix it:
//
//	config/gearman.yml:7: all.worker.example1.reverse: want [Handler, method], got a string
type Error struct {
	File string // as given to Load or Parse
	Line int    // 1-based; 0 when unknown
	// Key is the dotted path of the offending key, starting with the section
	// it was written in ("all" or the environment); list items as [i].
	Key string
	Msg string
	// Err is the underlying cause (a yaml or strconv error), if any.
	Err error
}

func (e *Error) Error() string {
	var parts []string
	if e.File != "" {
		loc := e.File
		if e.Line > 0 {
			loc += ":" + strconv.Itoa(e.Line)
		}
		parts = append(parts, loc)
	} else if e.Line > 0 {
		parts = append(parts, "line "+strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		parts = append(parts, e.Key)
	}
	parts = append(parts, e.Msg)
	return strings.Join(parts, ": ")
}

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }
