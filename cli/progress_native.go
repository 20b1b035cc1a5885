//go:build !wasm

package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// countProgress shows a terminal progress bar of done/total steps on w and
// returns the function that advances it to done. Native builds only: the
// progress bar library pulls in net/http, which the wasm builds leave out.
func countProgress(w io.Writer, total int, desc string) func(done int) {
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
		progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionSetPredictTime(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	return func(done int) { bar.Set(done) }
}
