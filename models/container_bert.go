package models

import "mote/core"

func readEncoderContainer(b *binReader, info *Info) (*core.Bert, error) {
	return nil, fileErr(b.name, 0, ErrUnsupported, "encoder containers: not yet")
}

func isEncoderContainer(data []byte) bool { return false }
