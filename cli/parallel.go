package cli

import "mote/core"

// nativeParallel returns the row splitter for this platform (nil: serial).
func nativeParallel() core.Parallel { return newParallel() }
