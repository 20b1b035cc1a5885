package models

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	ErrBadMagic    = errors.New("not a recognised model file")
	ErrTruncated   = errors.New("file is truncated")
	ErrUnsupported = errors.New("unsupported")
	ErrLimit       = errors.New("value beyond a hard limit")
	ErrChecksum    = errors.New("checksum mismatch")
	ErrCorrupt     = errors.New("corrupt data")
)

// Error is a failure to read a file, with where it happened.
type Error struct {
	File   string // file name as given
	Offset int64  // byte offset in the file (or in the decompressed payload, see Msg)
	Err    error  // one of the sentinels, possibly wrapping another error
	Msg    string // what was wrong
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: offset %d: %v: %s", e.File, e.Offset, e.Err, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func fileErr(file string, off int64, sentinel error, format string, a ...any) error {
	return &Error{File: file, Offset: off, Err: sentinel, Msg: fmt.Sprintf(format, a...)}
}
