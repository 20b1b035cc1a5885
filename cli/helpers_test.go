package cli

import (
	"fmt"
	"sync"
)

var (
	moteOnce sync.Once
	moteBin  string
	moteErr  error
)

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return fmt.Sprintf("go build: %v\n%s", e.err, e.out) }
