package models

import "mote/core"

// moteMagic starts every mote container.
const moteMagic = "MOTE"

// readContainer is replaced by the container reader.
func readContainer(b *binReader, info *Info) (*core.Model, error) {
	b.fail(ErrUnsupported, "container reader not built yet")
	return nil, b.err
}
