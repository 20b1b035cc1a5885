//go:build wasm

package cli

import (
	"io"
	"runtime"
)

// peakBytes is what the Go runtime took from the wasm linear memory, which
// never shrinks: its peak is the memory's current size.
func peakBytes() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

func benchWasip1(o benchOpts, args []string, stderr io.Writer) (*benchResult, error) {
	return nil, errNoWasip1
}

func benchCell(args []string, stderr io.Writer) (*benchResult, error) {
	o, err := parseBench(args)
	if err != nil {
		return nil, err
	}
	return benchNative(o)
}
