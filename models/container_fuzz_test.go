package models

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"

	"mote/core"
)

// FuzzReadContainer feeds arbitrary bytes to the container reader, with the
// size known and unknown, and again with the preamble's payload length and
// every CRC it can find made right, so that mutations reach the parsers
// behind the checksums. Any error must be a *models.Error wrapping a
// sentinel; any model read must be valid, writable, and read back the same.
//
//	go test -run=^$ -fuzz=FuzzReadContainer -fuzztime=60s ./models
func FuzzReadContainer(f *testing.F) {
	seeds := []*core.Model{
		ctSynthModel(f, ctSynthOpts{typ: core.Q4, gs: 32, shared: true, tok: ctTokFloat, seed: 6}),
		ctSynthModel(f, ctSynthOpts{typ: core.Q8, gs: 2, tok: ctTokInt, seed: 4}),
		ctSynthModel(f, ctSynthOpts{typ: core.F32, shared: true, seed: 1}),
	}
	for _, m := range seeds {
		for _, mode := range ctAllModes {
			for _, o := range []WriteOptions{{Compression: mode}, {Compression: mode, NoTensorCRC: true, F16: true, F16Scales: true}} {
				data := ctEncode(f, m, o)
				f.Add(data)
				f.Add(data[:len(data)/2])
				f.Add(data[:preambleSize+sectionHeaderSize+configSize+5])
				flipped := slices.Clone(data)
				flipped[len(data)/3] ^= 0x04
				f.Add(flipped)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzContainer(t, data)
		if fixed := fixContainerCRCs(data); fixed != nil {
			fuzzContainer(t, fixed)
		}
	})
}

func fuzzContainer(t *testing.T, data []byte) {
	for _, size := range []int64{int64(len(data)), -1} {
		b := newBinReader("fuzz", bytes.NewReader(data), size)
		m, ci, err := readMote(b, false)
		if err != nil {
			ctCheckFileErr(t, err, "fuzz input")
			continue
		}
		if m.Validate() != nil {
			continue // Read reports this as ErrCorrupt
		}
		var buf bytes.Buffer
		if err := WriteContainer(&buf, m, WriteOptions{Compression: ci.Compression}); err != nil {
			t.Fatalf("a model that was read cannot be written: %v", err)
		}
		back, _, err := ReadBytes("again", buf.Bytes())
		if err != nil {
			t.Fatalf("a rewritten model cannot be read: %v", err)
		}
		if d := ctDiffModels(m, back); d != "" {
			t.Fatalf("a rewritten model differs: %s", d)
		}
	}
}

// fixContainerCRCs returns a copy of data with the payload length, the
// preamble CRC and (outside zstd mode) every section CRC made right; nil
// when data has no preamble.
func fixContainerCRCs(data []byte) []byte {
	if len(data) < preambleSize || string(data[:4]) != moteMagic {
		return nil
	}
	d := slices.Clone(data)
	binary.LittleEndian.PutUint64(d[8:], uint64(len(d)-preambleSize))
	binary.LittleEndian.PutUint32(d[16:], crc32.Checksum(d[:16], castagnoli))
	if Compression(d[6]) == CompressZstd {
		return d
	}
	for at := preambleSize; at+sectionHeaderSize <= len(d); {
		n := binary.LittleEndian.Uint64(d[at+1:])
		if n > uint64(len(d)-at-sectionHeaderSize) {
			break
		}
		end := at + sectionHeaderSize + int(n)
		crc := crc32.Update(crc32.Checksum(d[at:at+9], castagnoli), castagnoli, d[at+sectionHeaderSize:end])
		binary.LittleEndian.PutUint32(d[at+9:], crc)
		at = end
	}
	return d
}
