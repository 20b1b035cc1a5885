//go:build wasm

package cli

import "mote/core"

func newParallel() core.Parallel { return nil }
