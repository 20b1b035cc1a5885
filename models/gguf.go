package models

import "mote/core"

// readGGUF is replaced by the GGUF reader.
func readGGUF(b *binReader, info *Info) (*core.Model, error) {
	b.fail(ErrUnsupported, "GGUF reader not built yet")
	return nil, b.err
}
