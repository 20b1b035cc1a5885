//go:build wasm

package cli

import (
	"fmt"
	"io"
)

// countProgress prints "desc: done/total" on w at every 10 % (a WASI
// command's stderr is rarely a terminal, and the bar library needs net/http).
func countProgress(w io.Writer, total int, desc string) func(done int) {
	last := -1
	return func(done int) {
		if total <= 0 {
			return
		}
		if tenth := done * 10 / total; tenth != last {
			last = tenth
			fmt.Fprintf(w, "%s: %d/%d\n", desc, done, total)
		}
	}
}
