//go:build wasm

package cli

import "mote/core"

func newBertParallel() core.BertParallel { return nil }
