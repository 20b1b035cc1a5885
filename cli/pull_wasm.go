//go:build wasm

package cli

import (
	"errors"
	"io"
)

// cmdPull is native only: WebAssembly builds have no sockets, and leaving
// net/http out keeps them small.
func cmdPull(args []string, stdout, stderr io.Writer) error {
	return errors.New("pull: not available in the WebAssembly build; run the native mote, or fetch the file another way")
}
