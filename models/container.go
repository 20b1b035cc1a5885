package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"mote/core"
)

// The container (FORMAT.md): a fixed preamble, then a payload of sections
// (config, tokenizer, tensor directory, tensor data, end), each with a
// CRC-32C. The payload is stored as is, as one zstd stream, or with every
// tensor as its own zstd frame. Readers stream it: every tensor is read or
// decompressed straight into the slice it will live in.
//
// Why sections with lengths rather than a fixed layout: a reader can bound
// every allocation by a length it has already checked, later versions can
// add ancillary sections that older readers skip, and a checksum per section
// says which part of a damaged file is wrong.
//
// Why not GGUF: its per-tensor overhead (64-bit dims, name strings, 32-byte
// alignment, string metadata) costs kilobytes, which matters when the whole
// 4-bit model must fit in 160 kB; it has no checksums and no compression.

// moteMagic starts every mote container.
const moteMagic = "MOTE"

// ContainerVersion is the container format version this package reads and
// writes. A reader rejects every other version (FORMAT.md, Versioning).
const ContainerVersion = 1

// Fixed sizes, as tabulated in FORMAT.md (TestFormatFixedSizes checks both).
const (
	preambleSize      = 20 // magic, version, compression, flags, payload length, CRC
	sectionHeaderSize = 13 // kind, body length, CRC
	configSize        = 41 // config section body
	configHeadDimSize = 4  // the u32 head_dim that follows it when cfgHeadDim is set
	tokHeaderSize     = 17 // fixed part of the tokenizer section body
	q4CodebookSize    = 16 // int8 codebook entries of a Q4 tensor
)

// Section kinds. Kinds 0..127 are critical (a reader must understand them);
// 128..255 are ancillary: a reader that does not know one verifies its CRC
// and skips it.
const (
	secEnd       = 0
	secConfig    = 1
	secTokenizer = 2
	secDirectory = 3
	secData      = 4
	secAncillary = 128
)

// sectionOrder is the order of the critical sections.
var sectionOrder = map[uint8]int{secConfig: 0, secTokenizer: 1, secDirectory: 2, secData: 3, secEnd: 4}

var sectionNames = map[uint8]string{secEnd: "end", secConfig: "config", secTokenizer: "tokenizer",
	secDirectory: "tensor directory", secData: "tensor data"}

func sectionName(kind uint8) string {
	if s, ok := sectionNames[kind]; ok {
		return s
	}
	return fmt.Sprintf("section kind %d", kind)
}

// Preamble flags.
const (
	flagTensorCRC = 1 << 0 // every directory entry carries the CRC-32C of its stored bytes
	knownFlags    = flagTensorCRC
)

// Config section flags.
const (
	cfgSharedClassifier = 1 << 0
	cfgHeadDim          = 1 << 1 // a u32 head_dim follows the flags (heads narrower or wider than dim/n_heads)
	knownCfgFlags       = cfgSharedClassifier | cfgHeadDim
)

// Reader limits beyond core's shape limits (FORMAT.md, Limits).
const (
	maxPayload     = 1 << 48 // payload bytes
	maxExpansion   = 64      // decompressed bytes per compressed byte
	expansionSlack = 1 << 20 // decompressed bytes allowed beyond maxExpansion
	maxZstdWindow  = 8 << 20 // zstd window (and single-segment frame) size
	maxGroupSize   = 8 * core.MaxDim
	maxNameBytes   = 255
	maxMetaSection = 64 << 20 // config, tokenizer or directory section bytes
)

// castagnoli is the CRC-32C table used for every checksum in the container.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compression is how a container's payload is stored.
type Compression uint8

const (
	CompressNone   Compression = 0 // sections stored as they are
	CompressZstd   Compression = 1 // the whole payload is one zstd stream
	CompressTensor Compression = 2 // each tensor's bytes are their own zstd frame (or raw when that is smaller)
)

var compressionNames = [...]string{"none", "zstd", "tensor"}

func (c Compression) String() string {
	if int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// ParseCompression reads a compression name: none, zstd or tensor.
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if s == n {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q (want none, zstd or tensor)", s)
}

// TensorType is how a tensor's values are stored in a container.
// Codes 6..255 are reserved for further types (FORMAT.md).
type TensorType uint8

const (
	TypeF32  TensorType = 0 // float32
	TypeF16  TensorType = 1 // IEEE half, float32 in memory
	TypeQ8   TensorType = 2 // int8 values, then one scale per group of a row
	TypeQ4   TensorType = 3 // 16-entry int8 codebook, packed 4-bit indices, then scales
	TypeQK   TensorType = 4 // k-bit indices (k = 2..8) into a 2^k-entry codebook, then scales (container_qk.go)
	TypeF32S TensorType = 5 // float32 with their bytes in planes per block (shuffleBlock values), for zstd
)

// shuffleBlock is the number of values per byte-plane block of TypeF32S: the
// reader unshuffles through a scratch buffer of 4*shuffleBlock bytes, so a
// tensor streams straight into its final slice.
const shuffleBlock = 16384

var typeNames = map[TensorType]string{TypeF32: "f32", TypeF16: "f16", TypeQ8: "q8", TypeQ4: "q4", TypeQK: "qk", TypeF32S: "f32s"}

func (t TensorType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// grouped reports whether the type has per-group scales.
func (t TensorType) grouped() bool { return t == TypeQ8 || t == TypeQ4 || t == TypeQK }

// ScaleType is how the scales of a grouped tensor are stored.
// Codes 3..255 are reserved (FORMAT.md).
type ScaleType uint8

const (
	ScaleF32  ScaleType = 0
	ScaleF16  ScaleType = 1
	ScaleLog8 ScaleType = 2 // one byte per scale on a per-tensor logarithmic grid (container_qk.go)
)

func (s ScaleType) String() string {
	switch s {
	case ScaleF32:
		return "f32"
	case ScaleF16:
		return "f16"
	case ScaleLog8:
		return "log8"
	}
	return fmt.Sprintf("scale(%d)", uint8(s))
}

// bytes is the stored size of one scale (log8 adds a 5-byte header per
// tensor, see scalesSize).
func (s ScaleType) bytes() int64 {
	switch s {
	case ScaleF16:
		return 2
	case ScaleLog8:
		return 1
	}
	return 4
}

// Tensor name codes. The names are GGUF's, so that tools and policies can
// name tensors the same way in both formats. Code 0 is a literal name.
const (
	nameLiteral    = 0
	nameTokenEmbd  = 1
	nameOutputNorm = 2
	nameOutput     = 3
	nameLayerFirst = 16 // blk.N.* codes follow, each with the layer N
)

var globalTensorNames = map[uint8]string{nameTokenEmbd: "token_embd", nameOutputNorm: "output_norm", nameOutput: "output"}

// layerTensorNames are the per-layer tensors, codes 16.., in canonical order.
var layerTensorNames = [...]string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
	"ffn_norm", "ffn_gate", "ffn_down", "ffn_up"}

func tensorName(code uint8, layer int) string {
	if code >= nameLayerFirst {
		return "blk." + strconv.Itoa(layer) + "." + layerTensorNames[code-nameLayerFirst]
	}
	return globalTensorNames[code]
}

// parseTensorName maps a literal name to its code and layer.
func parseTensorName(s string) (code uint8, layer int, ok bool) {
	for c, n := range globalTensorNames {
		if s == n {
			return c, 0, true
		}
	}
	rest, found := strings.CutPrefix(s, "blk.")
	if !found {
		return 0, 0, false
	}
	num, base, found := strings.Cut(rest, ".")
	l, err := strconv.Atoi(num)
	if !found || err != nil || l < 0 || strconv.Itoa(l) != num {
		return 0, 0, false
	}
	for i, n := range layerTensorNames {
		if base == n {
			return uint8(nameLayerFirst + i), l, true
		}
	}
	return 0, 0, false
}

// slot is one tensor a model of a given config needs.
type slot struct {
	code       uint8
	layer      int
	rows, cols int
	vector     bool // a norm: stored 1 x n, float only
}

// modelSlots lists the tensors of a model in canonical (writing) order.
func modelSlots(c *core.Config, shared bool) []slot {
	d, h, kv, q := c.Dim, c.HiddenDim, c.KVDim(), c.QDim()
	s := []slot{{code: nameTokenEmbd, rows: c.VocabSize, cols: d}}
	shapes := [len(layerTensorNames)][2]int{{1, d}, {q, d}, {kv, d}, {kv, d}, {d, q}, {1, d}, {h, d}, {d, h}, {h, d}}
	for l := 0; l < c.NLayers; l++ {
		for i, sh := range shapes {
			s = append(s, slot{code: uint8(nameLayerFirst + i), layer: l, rows: sh[0], cols: sh[1], vector: i == 0 || i == 5})
		}
	}
	s = append(s, slot{code: nameOutputNorm, rows: 1, cols: d, vector: true})
	if !shared {
		s = append(s, slot{code: nameOutput, rows: c.VocabSize, cols: d})
	}
	return s
}

// slotIndex finds a tensor's place in modelSlots' order.
func slotIndex(code uint8, layer int, c *core.Config, shared bool) (int, bool) {
	per := len(layerTensorNames)
	switch {
	case code == nameTokenEmbd:
		return 0, true
	case code == nameOutputNorm:
		return 1 + per*c.NLayers, true
	case code == nameOutput && !shared:
		return 2 + per*c.NLayers, true
	case code >= nameLayerFirst && int(code) < nameLayerFirst+per && layer < c.NLayers:
		return 1 + per*layer + int(code-nameLayerFirst), true
	}
	return 0, false
}

// slotMat returns where slot s lives in m: a matrix, or a norm vector.
func slotMat(m *core.Model, s slot) (*core.Mat, []float32) {
	w := &m.Weights
	d, l := m.Config.Dim, s.layer
	switch s.code {
	case nameTokenEmbd:
		return &w.TokenEmbedding, nil
	case nameOutputNorm:
		return nil, w.RmsFinal
	case nameOutput:
		return w.Wcls, nil
	}
	switch layerTensorNames[s.code-nameLayerFirst] {
	case "attn_norm":
		return nil, w.RmsAtt[l*d : (l+1)*d]
	case "ffn_norm":
		return nil, w.RmsFFN[l*d : (l+1)*d]
	case "attn_q":
		return &w.Wq[l], nil
	case "attn_k":
		return &w.Wk[l], nil
	case "attn_v":
		return &w.Wv[l], nil
	case "attn_output":
		return &w.Wo[l], nil
	case "ffn_gate":
		return &w.W1[l], nil
	case "ffn_down":
		return &w.W2[l], nil
	default: // ffn_up
		return &w.W3[l], nil
	}
}

// rawSize is the number of bytes a tensor's values and scales take stored
// uncompressed (FORMAT.md, Tensor types). bits and explicit (the codebook
// is stored) describe qk tensors only.
func rawSize(t TensorType, rows, cols, gs int, st ScaleType, bits int, explicit bool) int64 {
	r, c := int64(rows), int64(cols)
	switch t {
	case TypeF32, TypeF32S:
		return 4 * r * c
	case TypeF16:
		return 2 * r * c
	case TypeQ8:
		return r*c + scalesSize(r, int64((cols+gs-1)/gs), st)
	case TypeQ4:
		return q4CodebookSize + r*((c+1)/2) + scalesSize(r, int64((cols+gs-1)/gs), st)
	case TypeQK:
		return qkRawSize(rows, cols, gs, bits, explicit, st)
	}
	return -1
}

// TensorInfo describes one tensor of a container, as its directory says.
type TensorInfo struct {
	Name       string
	Type       TensorType
	GroupSize  int       // grouped types only
	Scale      ScaleType // grouped types only
	Bits       int       // qk only: bits per index
	Codebook   bool      // qk only: the codebook is stored (not the uniform one)
	Rows, Cols int
	Stored     int64 // bytes in the tensor data section (compressed size when compressed)
	Raw        int64 // bytes uncompressed
}

// SectionInfo describes one section of a container.
type SectionInfo struct {
	Kind  uint8
	Name  string
	Bytes int64 // body length (uncompressed, in zstd mode)
}

// ContainerInfo is what a container's header says, without its tensor data.
type ContainerInfo struct {
	Version          int
	Compression      Compression
	TensorCRCs       bool  // directory entries carry per-tensor CRCs
	PayloadBytes     int64 // payload as stored (compressed, in zstd mode)
	Config           core.Config
	SharedClassifier bool
	ActGroup         int
	Tokens           int // tokenizer size, 0 when the container has none
	Sections         []SectionInfo
	Tensors          []TensorInfo
}

// ReadContainerInfo reads a container's preamble, config, tokenizer and
// tensor directory, verifying their checksums, but not its tensor data.
func ReadContainerInfo(name string, r io.Reader, size int64) (*ContainerInfo, error) {
	b := newBinReader(name, bufio.NewReaderSize(r, 1<<16), size)
	_, ci, err := readMote(b, true)
	return ci, err
}

// readContainer reads a mote container (FORMAT.md) positioned at its magic.
func readContainer(b *binReader, info *Info) (*core.Model, error) {
	m, ci, err := readMote(b, false)
	if err != nil {
		return nil, err
	}
	info.Version = ci.Version
	info.Compress = ci.Compression.String()
	info.Checksums = "verified"
	return m, nil
}

// cReader reads the payload (or one decompressed tensor frame): offsets,
// running CRCs, and the limits that every read is checked against.
type cReader struct {
	r      io.Reader
	name   string
	where  string // appended to messages: what the offsets are relative to
	off    int64  // offset of the next byte
	limit  int64  // no read may go past this offset (payload end, budget or frame size)
	secEnd int64  // end of the section being read, or -1
	over   error  // sentinel for reads past limit: ErrTruncated, or ErrLimit for a decompression budget
	sec    uint32 // CRC-32C of the section read so far
	ten    uint32 // CRC-32C of the tensor read so far
	err    error
	buf    [16]byte
}

func (r *cReader) fail(sentinel error, format string, a ...any) {
	if r.err == nil {
		r.err = fileErr(r.name, r.off, sentinel, "%s%s", fmt.Sprintf(format, a...), r.where)
	}
}

// zstdSentinel classifies an error from reading a (decompressed) stream.
func zstdSentinel(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncated
	case errors.Is(err, zstd.ErrCRCMismatch):
		return ErrChecksum
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return ErrLimit
	}
	return ErrCorrupt
}

// read fills p, updating the CRCs.
func (r *cReader) read(p []byte, what string) bool {
	if r.err != nil {
		return false
	}
	n := int64(len(p))
	if r.secEnd >= 0 && n > r.secEnd-r.off {
		r.fail(ErrCorrupt, "%s (%d bytes) runs past the end of its section (%d bytes left)", what, n, r.secEnd-r.off)
		return false
	}
	if n > r.limit-r.off {
		r.fail(r.over, "%s needs %d bytes, %d left", what, n, r.limit-r.off)
		return false
	}
	got, err := io.ReadFull(r.r, p)
	r.sec = crc32.Update(r.sec, castagnoli, p[:got])
	r.ten = crc32.Update(r.ten, castagnoli, p[:got])
	r.off += int64(got)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.fail(ErrTruncated, "%s needs %d bytes, the data ends after %d", what, n, got)
		} else {
			r.fail(zstdSentinel(err), "reading %s: %v", what, err)
		}
		return false
	}
	return true
}

// skip reads and discards n bytes (still checksummed).
func (r *cReader) skip(n int64, what string) {
	var chunk [4096]byte
	for n > 0 && r.err == nil {
		k := min(n, int64(len(chunk)))
		r.read(chunk[:k], what)
		n -= k
	}
}

func (r *cReader) u8(what string) uint8 {
	if !r.read(r.buf[:1], what) {
		return 0
	}
	return r.buf[0]
}

func (r *cReader) u32(what string) uint32 {
	if !r.read(r.buf[:4], what) {
		return 0
	}
	return binary.LittleEndian.Uint32(r.buf[:4])
}

func (r *cReader) u64(what string) uint64 {
	if !r.read(r.buf[:8], what) {
		return 0
	}
	return binary.LittleEndian.Uint64(r.buf[:8])
}

func (r *cReader) f32(what string) float32 { return math.Float32frombits(r.u32(what)) }

// uvarint reads an unsigned LEB128 value no larger than max.
func (r *cReader) uvarint(what string, max uint64) uint64 {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c := r.u8(what)
		if r.err != nil {
			return 0
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if v > max {
				r.fail(ErrLimit, "%s %d is above the limit %d", what, v, max)
				return 0
			}
			return v
		}
	}
	r.fail(ErrCorrupt, "%s: varint overflows 64 bits", what)
	return 0
}

// readMote reads a container. With headerOnly it stops before the tensor
// data and returns no model.
func readMote(b *binReader, headerOnly bool) (*core.Model, *ContainerInfo, error) {
	ci := &ContainerInfo{}
	var pre [preambleSize]byte
	b.full(pre[:6], "preamble")
	if b.err != nil {
		return nil, nil, b.err
	}
	if string(pre[:4]) != moteMagic {
		return nil, nil, fileErr(b.name, 0, ErrBadMagic, "magic %q is not %q", pre[:4], moteMagic)
	}
	ci.Version = int(binary.LittleEndian.Uint16(pre[4:]))
	if ci.Version != ContainerVersion {
		return nil, nil, fileErr(b.name, 4, ErrUnsupported, "container version %d (this reader reads version %d)", ci.Version, ContainerVersion)
	}
	b.full(pre[6:], "preamble")
	if b.err != nil {
		return nil, nil, b.err
	}
	if got, want := binary.LittleEndian.Uint32(pre[16:]), crc32.Checksum(pre[:16], castagnoli); got != want {
		return nil, nil, fileErr(b.name, 16, ErrChecksum, "preamble CRC is %08x, its bytes give %08x", got, want)
	}
	mode, flags := Compression(pre[6]), pre[7]
	payload := binary.LittleEndian.Uint64(pre[8:])
	ci.Compression, ci.TensorCRCs = mode, flags&flagTensorCRC != 0
	switch {
	case mode > CompressTensor:
		return nil, nil, fileErr(b.name, 6, ErrUnsupported, "compression mode %d", mode)
	case flags&^knownFlags != 0:
		return nil, nil, fileErr(b.name, 7, ErrUnsupported, "unknown flags %#02x", flags&^knownFlags)
	case payload > maxPayload:
		return nil, nil, fileErr(b.name, 8, ErrLimit, "payload length %d is above the limit %d", payload, int64(maxPayload))
	}
	ci.PayloadBytes = int64(payload)
	if rem := b.remaining(); rem >= 0 && rem != ci.PayloadBytes {
		if rem < ci.PayloadBytes {
			return nil, nil, fileErr(b.name, preambleSize, ErrTruncated, "the preamble announces a payload of %d bytes, the file has %d after it", payload, rem)
		}
		return nil, nil, fileErr(b.name, preambleSize, ErrCorrupt, "%d bytes after the payload of %d bytes", rem-ci.PayloadBytes, payload)
	}

	r := &cReader{r: b.r, name: b.name, off: b.off, limit: b.off + ci.PayloadBytes, secEnd: -1, over: ErrTruncated}
	p := &parser{cReader: r, ci: ci, mode: mode, tensorCRC: ci.TensorCRCs}
	defer p.closeDecoder()
	var counted *countingReader
	if mode == CompressZstd {
		counted = &countingReader{r: io.LimitReader(b.r, ci.PayloadBytes)}
		dec, err := p.decoder()
		if err == nil {
			err = dec.Reset(counted)
		}
		if err != nil {
			return nil, nil, fileErr(b.name, b.off, ErrCorrupt, "starting zstd: %v", err)
		}
		r.r, r.off, r.over = dec, 0, ErrLimit
		r.limit = maxExpansion*ci.PayloadBytes + expansionSlack
		r.where = " (offset in the decompressed payload)"
	}

	m := p.sections(headerOnly)
	if p.err != nil {
		return nil, nil, p.err
	}
	if headerOnly {
		return nil, ci, nil
	}
	// Everything after the end marker must be the end of the file.
	if mode == CompressZstd {
		if n, err := io.ReadFull(p.dec, r.buf[:1]); n > 0 || err != io.EOF {
			if n > 0 {
				r.fail(ErrCorrupt, "data after the end section")
			} else {
				r.fail(zstdSentinel(err), "after the end section: %v", err)
			}
			return nil, nil, r.err
		}
		b.off += counted.n
		if counted.n != ci.PayloadBytes {
			return nil, nil, fileErr(b.name, b.off, ErrCorrupt, "the zstd stream ends %d bytes before the payload does", ci.PayloadBytes-counted.n)
		}
	} else {
		if r.off != r.limit {
			r.fail(ErrCorrupt, "%d payload bytes after the end section", r.limit-r.off)
			return nil, nil, r.err
		}
		b.off = r.off
	}
	if b.size < 0 { // unknown size: the stream itself must end here
		if n, _ := io.ReadFull(b.r, r.buf[:1]); n > 0 {
			return nil, nil, fileErr(b.name, b.off, ErrCorrupt, "data after the payload")
		}
	}
	return m, ci, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parser holds the state of one container read.
type parser struct {
	*cReader
	ci        *ContainerInfo
	dec       *zstd.Decoder
	shuf      []byte // scratch for unshuffling TypeF32S blocks
	mode      Compression
	tensorCRC bool

	m     *core.Model
	dir   []dirEntry
	frame []byte // one tensor's compressed bytes (per-tensor mode)
}

// decoder returns the zstd decoder, made on first use: synchronous (no
// goroutines), window and single-segment frames bounded.
func (p *parser) decoder() (*zstd.Decoder, error) {
	if p.dec == nil {
		var err error
		p.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecodeBuffersBelow(0))
		if err != nil {
			return nil, err
		}
	}
	return p.dec, nil
}

func (p *parser) closeDecoder() {
	if p.dec != nil {
		p.dec.Close()
	}
}

type dirEntry struct {
	TensorInfo
	slot    slot
	crc     uint32
	rawData bool // stored uncompressed (always, unless per-tensor mode compressed it)
}

// sections reads the section sequence up to the end marker.
func (p *parser) sections(headerOnly bool) *core.Model {
	var seen [secAncillary]bool
	last := -1 // kind of the last critical section
	for p.err == nil {
		start := p.off
		var hdr [sectionHeaderSize]byte
		p.secEnd = -1
		if !p.read(hdr[:], "section header") {
			break
		}
		kind := hdr[0]
		length := binary.LittleEndian.Uint64(hdr[1:])
		want := binary.LittleEndian.Uint32(hdr[9:])
		p.sec = crc32.Checksum(hdr[:9], castagnoli)
		name := sectionName(kind)
		if rem := p.limit - p.off; length > uint64(rem) {
			p.off = start
			p.fail(p.over, "%s section of %d bytes, %d payload bytes left", name, length, rem)
			break
		}
		p.secEnd = p.off + int64(length)
		p.ci.Sections = append(p.ci.Sections, SectionInfo{Kind: kind, Name: name, Bytes: int64(length)})
		if kind != secConfig && !seen[secConfig] {
			p.off = start
			p.fail(ErrCorrupt, "%s section before the config section", name)
			break
		}
		if kind < secAncillary {
			// Critical sections come once each, in order.
			o, known := sectionOrder[kind]
			switch {
			case !known:
				p.off = start
				p.fail(ErrUnsupported, "section kind %d (critical; unknown to format version %d)", kind, ContainerVersion)
			case seen[kind]:
				p.off = start
				p.fail(ErrCorrupt, "second %s section", name)
			case o <= last:
				p.off = start
				p.fail(ErrCorrupt, "%s section out of order", name)
			case (kind == secData || kind == secEnd) && !seen[secDirectory]:
				p.off = start
				p.fail(ErrCorrupt, "%s section before the tensor directory", name)
			case kind == secEnd && !seen[secData] && !headerOnly:
				p.off = start
				p.fail(ErrCorrupt, "no tensor data section")
			}
			if p.err != nil {
				break
			}
			seen[kind], last = true, o
		}
		if headerOnly && kind == secData {
			return nil
		}
		if kind == secConfig || kind == secTokenizer || kind == secDirectory {
			p.metadata(kind, int64(length), want)
			if p.err != nil {
				break
			}
			continue
		}
		switch kind {
		case secData:
			p.data(int64(length))
		case secEnd:
			if length != 0 {
				p.fail(ErrCorrupt, "end section has a body of %d bytes", length)
			}
		default:
			p.skip(int64(length), name)
		}
		if !p.sectionDone(name, start, want) {
			break
		}
		if kind == secEnd {
			return p.m
		}
	}
	return nil
}

// sectionDone checks a section just read: no error, read to its end, and
// its bytes give the CRC its header promised (start: the header's offset).
func (p *parser) sectionDone(name string, start int64, want uint32) bool {
	switch {
	case p.err != nil:
		return false
	case p.off != p.secEnd:
		p.fail(ErrCorrupt, "%d unread bytes at the end of the %s section", p.secEnd-p.off, name)
		return false
	case p.sec != want:
		p.off = start
		p.fail(ErrChecksum, "%s section CRC is %08x, its bytes give %08x", name, want, p.sec)
		return false
	}
	return true
}

// metadata reads a config, tokenizer or directory section: its body is
// read and its CRC checked first, so that damage shows as a checksum error
// rather than as whatever the damaged bytes happen to say; then it is
// parsed from memory.
func (p *parser) metadata(kind uint8, length int64, want uint32) {
	start := p.off - sectionHeaderSize
	if length > maxMetaSection {
		p.off = start
		p.fail(ErrLimit, "%s section of %d bytes, above the limit %d", sectionName(kind), length, maxMetaSection)
		return
	}
	body := make([]byte, length)
	if !p.read(body, sectionName(kind)) {
		return
	}
	if p.sec != want {
		p.off = start
		p.fail(ErrChecksum, "%s section CRC is %08x, its bytes give %08x", sectionName(kind), want, p.sec)
		return
	}
	outer := p.cReader
	p.cReader = &cReader{r: bytes.NewReader(body), name: p.name, where: p.where, off: p.off - length,
		limit: p.off, secEnd: p.off, over: ErrCorrupt}
	switch kind {
	case secConfig:
		p.config(length)
	case secTokenizer:
		p.tokenizer(length)
	case secDirectory:
		p.directory(outer.limit)
	}
	if p.err == nil && p.off != p.secEnd {
		p.fail(ErrCorrupt, "%d unread bytes at the end of the %s section", p.secEnd-p.off, sectionName(kind))
	}
	inner := p.cReader
	p.cReader = outer
	p.err = inner.err
}

// config reads the config section and allocates the model.
func (p *parser) config(length int64) {
	if length != configSize && length != configSize+configHeadDimSize {
		p.fail(ErrCorrupt, "config section has %d bytes, want %d or %d", length, configSize, configSize+configHeadDimSize)
		return
	}
	var v [7]uint32
	for i, what := range []string{"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"} {
		v[i] = p.u32(what)
	}
	var c core.Config
	c.NormEps = p.f32("norm_eps")
	c.RopeTheta = p.f32("rope_theta")
	act := p.u32("act_group")
	flags := p.u8("config flags")
	var headDim uint32
	if p.err != nil {
		return
	}
	switch {
	case flags&^knownCfgFlags != 0:
		p.fail(ErrUnsupported, "unknown config flags %#02x", flags&^knownCfgFlags)
	case flags&cfgHeadDim != 0 && length != configSize+configHeadDimSize:
		p.fail(ErrCorrupt, "config flags say head_dim follows, but the section has %d bytes", length)
	case flags&cfgHeadDim == 0 && length != configSize:
		p.fail(ErrCorrupt, "config section has %d bytes without the head_dim flag, want %d", length, configSize)
	case flags&cfgHeadDim != 0:
		if headDim = p.u32("head_dim"); p.err == nil && headDim == 0 {
			p.fail(ErrCorrupt, "head_dim 0 with the head_dim flag set")
		}
	}
	if p.err != nil {
		return
	}
	if headDim > math.MaxInt32 {
		p.fail(ErrLimit, "head_dim is %d", headDim)
		return
	}
	c.HeadDim = int(headDim)
	for i, x := range v {
		if x > math.MaxInt32 {
			p.fail(ErrLimit, "config field %d is %d", i, x)
			return
		}
	}
	c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen =
		int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), int(v[6])
	switch err := c.Validate(); {
	case err != nil:
		p.fail(ErrLimit, "%v", err)
	case act > maxGroupSize:
		p.fail(ErrLimit, "activation group %d is above the limit %d", act, maxGroupSize)
	}
	if p.err != nil {
		return
	}
	p.ci.Config, p.ci.SharedClassifier, p.ci.ActGroup = c, flags&cfgSharedClassifier != 0, int(act)
	p.m = &core.Model{Config: c, ActGroup: int(act)}
}

// tokenizer reads the tokenizer section (FORMAT.md, Tokenizer).
func (p *parser) tokenizer(length int64) {
	c := &p.ci.Config
	n64 := p.u32("token count")
	bos, eos := p.u32("bos"), p.u32("eos")
	byteBase := p.u32("byte token base")
	coding := p.u8("score coding")
	if p.err != nil {
		return
	}
	n := int64(n64)
	stored := n
	if byteBase != noByteTokens {
		stored -= 256
	}
	// every stored piece and every score takes at least one byte
	switch {
	case n != int64(c.VocabSize):
		p.fail(ErrCorrupt, "tokenizer has %d tokens, the config %d", n, c.VocabSize)
	case int64(bos) >= n || int64(eos) >= n:
		p.fail(ErrCorrupt, "bos %d / eos %d outside the vocabulary of %d", bos, eos, n)
	case byteBase != noByteTokens && int64(byteBase)+256 > n:
		p.fail(ErrCorrupt, "byte tokens at %d..%d outside the vocabulary of %d", byteBase, int64(byteBase)+255, n)
	case coding > scoresInt:
		p.fail(ErrUnsupported, "score coding %d", coding)
	case stored+n > length-tokHeaderSize:
		p.fail(ErrCorrupt, "%d tokens cannot fit in a tokenizer section of %d bytes", n, length)
	}
	if p.err != nil {
		return
	}
	vocab := make([]string, n)
	scores := make([]float32, n)
	var buf []byte
	for i := range vocab {
		if byteBase != noByteTokens && i >= int(byteBase) && i < int(byteBase)+256 {
			vocab[i] = byteTokenText(byte(i - int(byteBase)))
			continue
		}
		l := p.uvarint("piece length", maxTokenBytes)
		if p.err != nil {
			return
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if !p.read(buf, "piece "+strconv.Itoa(i)) {
			return
		}
		vocab[i] = string(buf)
	}
	if coding == scoresF32 {
		if !p.read(f32Bytes(scores), "scores") {
			return
		}
	} else {
		var prev uint64
		for i := range scores {
			d := p.uvarint("score delta", math.MaxUint64)
			if p.err != nil {
				return
			}
			sm := prev + uint64(int64(d>>1)^-int64(d&1)) // zigzag; wraps like the writer's difference
			if sm >= 1<<25 {
				p.fail(ErrCorrupt, "score %d: sign-magnitude value %d outside 0..2^25", i, int64(sm))
				return
			}
			scores[i] = float32(sm >> 1)
			if sm&1 != 0 {
				scores[i] = -scores[i]
			}
			prev = sm
		}
	}
	t, err := core.NewTokenizer(vocab, scores, int(bos), int(eos))
	if err != nil {
		p.fail(ErrCorrupt, "%v", err)
		return
	}
	p.m.Tokenizer = t
	p.ci.Tokens = int(n)
}

// Tokenizer section constants.
const (
	noByteTokens = math.MaxUint32 // byte token base when the pieces are all stored
	scoresF32    = 0
	scoresInt    = 1 // sign-magnitude integers, zigzag deltas
)

// byteTokenText is the piece of byte token b, as SentencePiece spells it.
func byteTokenText(b byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
}

// directory reads the tensor directory and checks it against the config.
// limit is where the payload (or the decompression budget) ends.
func (p *parser) directory(limit int64) {
	c := &p.ci.Config
	shared := p.ci.SharedClassifier
	slots := modelSlots(c, shared)
	count := p.uvarint("tensor count", uint64(len(slots)))
	if p.err != nil {
		return
	}
	if count != uint64(len(slots)) {
		p.fail(ErrCorrupt, "directory lists %d tensors, the config needs %d", count, len(slots))
		return
	}
	p.dir = make([]dirEntry, 0, count)
	seen := make([]bool, len(slots))
	var totalStored, totalRaw int64
	for i := 0; i < int(count) && p.err == nil; i++ {
		at := p.off
		code := p.u8("tensor name code")
		layer := 0
		switch {
		case code == nameLiteral:
			l := p.u8("tensor name length")
			var nb [maxNameBytes]byte
			if !p.read(nb[:l], "tensor name") {
				return
			}
			var ok bool
			if code, layer, ok = parseTensorName(string(nb[:l])); !ok {
				p.off = at
				p.fail(ErrUnsupported, "tensor %q is not one format version %d knows", nb[:l], ContainerVersion)
				return
			}
		case code >= nameLayerFirst && int(code) < nameLayerFirst+len(layerTensorNames):
			layer = int(p.uvarint("layer", uint64(c.NLayers-1)))
		case globalTensorNames[code] == "":
			p.off = at
			p.fail(ErrUnsupported, "tensor name code %d", code)
		}
		if p.err != nil {
			return
		}
		e := dirEntry{TensorInfo: TensorInfo{Name: tensorName(code, layer)}}
		idx, ok := slotIndex(code, layer, c, shared)
		if !ok {
			p.off = at
			p.fail(ErrCorrupt, "tensor %s does not belong in this model (shared classifier: %v)", e.Name, shared)
			return
		}
		if seen[idx] {
			p.off = at
			p.fail(ErrCorrupt, "tensor %s listed twice", e.Name)
			return
		}
		seen[idx] = true
		e.slot = slots[idx]
		e.Type = TensorType(p.u8("tensor type"))
		if e.Type.grouped() {
			e.GroupSize = int(p.uvarint("group size", maxGroupSize))
			e.Scale = ScaleType(p.u8("scale type"))
		}
		var cbCoding uint8
		if e.Type == TypeQK {
			e.Bits = int(p.u8("index bits"))
			cbCoding = p.u8("codebook coding")
			e.Codebook = cbCoding == codebookExplicit
		}
		e.Rows = int(p.uvarint("rows", core.MaxVocab))
		e.Cols = int(p.uvarint("cols", maxGroupSize))
		stored := p.uvarint("stored size", maxPayload)
		if p.tensorCRC {
			e.crc = p.u32("tensor CRC")
		}
		if p.err != nil {
			return
		}
		e.Stored = int64(stored)
		switch {
		case e.Type > TypeF32S:
			p.fail(ErrUnsupported, "tensor %s has type %d (reserved in version %d)", e.Name, e.Type, ContainerVersion)
		case e.Type == TypeQK && (e.Bits < minPackedBits || e.Bits > maxPackedBits):
			p.fail(ErrUnsupported, "tensor %s has %d-bit indices (%d..%d supported)", e.Name, e.Bits, minPackedBits, maxPackedBits)
		case e.Type == TypeQK && cbCoding > codebookExplicit:
			p.fail(ErrUnsupported, "tensor %s has codebook coding %d", e.Name, cbCoding)
		case e.Type.grouped() && e.Scale > ScaleLog8:
			p.fail(ErrUnsupported, "tensor %s has scale type %d", e.Name, e.Scale)
		case e.Type.grouped() && e.GroupSize == 0:
			p.fail(ErrCorrupt, "tensor %s has group size 0", e.Name)
		case e.Rows != e.slot.rows || e.Cols != e.slot.cols:
			p.fail(ErrCorrupt, "tensor %s is %dx%d, the config says %dx%d", e.Name, e.Rows, e.Cols, e.slot.rows, e.slot.cols)
		case e.slot.vector && e.Type != TypeF32 && e.Type != TypeF16 && e.Type != TypeF32S:
			p.fail(ErrUnsupported, "norm %s has type %v (only f32 and f16)", e.Name, e.Type)
		}
		if p.err != nil {
			return
		}
		e.Raw = rawSize(e.Type, e.Rows, e.Cols, e.GroupSize, e.Scale, e.Bits, e.Codebook)
		e.rawData = true
		if p.mode == CompressTensor {
			switch {
			case e.Stored > e.Raw:
				p.fail(ErrCorrupt, "tensor %s: %d stored bytes, more than its %d raw bytes", e.Name, e.Stored, e.Raw)
			case e.Stored == 0:
				p.fail(ErrCorrupt, "tensor %s: empty zstd frame", e.Name)
			}
			e.rawData = e.Stored == e.Raw
		} else if e.Stored != e.Raw {
			p.fail(ErrCorrupt, "tensor %s: %d stored bytes, its type and shape take %d", e.Name, e.Stored, e.Raw)
		}
		if p.err != nil {
			return
		}
		if e.Raw > maxAlloc {
			p.fail(ErrLimit, "tensor %s: %d bytes exceed the %d-byte allocation limit", e.Name, e.Raw, int64(maxAlloc))
			return
		}
		totalStored += e.Stored
		totalRaw += e.Raw
		p.dir = append(p.dir, e)
		p.ci.Tensors = append(p.ci.Tensors, e.TensorInfo)
	}
	if p.err != nil {
		return
	}
	// Bound what the data will decompress to before allocating anything.
	left := limit - p.secEnd - 2*sectionHeaderSize // at least the data and end section headers follow
	switch {
	case p.mode == CompressZstd && totalRaw > left:
		p.fail(ErrLimit, "the directory describes %d bytes of tensor data; a compressed payload of %d bytes may expand to %d more at most (%dx + %d)",
			totalRaw, p.ci.PayloadBytes, left, maxExpansion, expansionSlack)
	case p.mode != CompressZstd && totalStored > left:
		p.fail(ErrTruncated, "the directory describes %d bytes of tensor data, the payload has %d left", totalStored, left)
	case p.mode == CompressTensor && totalRaw > maxExpansion*totalStored+expansionSlack:
		p.fail(ErrLimit, "%d bytes of tensors would decompress to %d, more than the limit %dx + %d", totalStored, totalRaw, maxExpansion, expansionSlack)
	}
}

// data reads the tensor data section into a newly built model.
func (p *parser) data(length int64) {
	var total int64
	for _, e := range p.dir {
		total += e.Stored
	}
	if total != length {
		p.fail(ErrCorrupt, "tensor data section has %d bytes, the directory %d", length, total)
		return
	}
	c := &p.m.Config
	w := &p.m.Weights
	d, l := c.Dim, c.NLayers
	w.RmsAtt, w.RmsFFN, w.RmsFinal = make([]float32, l*d), make([]float32, l*d), make([]float32, d)
	w.Wq, w.Wk, w.Wv, w.Wo = make([]core.Mat, l), make([]core.Mat, l), make([]core.Mat, l), make([]core.Mat, l)
	w.W1, w.W2, w.W3 = make([]core.Mat, l), make([]core.Mat, l), make([]core.Mat, l)
	if p.ci.SharedClassifier {
		w.Wcls = &w.TokenEmbedding
	} else {
		w.Wcls = &core.Mat{}
	}
	for i := range p.dir {
		if !p.tensor(&p.dir[i]) {
			return
		}
	}
}

// tensor reads one tensor's stored bytes into its final slices.
func (p *parser) tensor(e *dirEntry) bool {
	src, at, ok := p.tensorSource(e)
	if !ok {
		return false
	}
	mat, vec := slotMat(p.m, e.slot)
	n := e.Rows * e.Cols
	switch e.Type {
	case TypeF32, TypeF16, TypeF32S:
		if vec == nil {
			vec = make([]float32, n)
			*mat = core.NewMatF32(e.Rows, e.Cols, vec)
		}
		if e.Type == TypeF32S {
			if p.shuf == nil {
				p.shuf = make([]byte, 4*shuffleBlock)
			}
			readShuffled(src, vec, p.shuf, e.Name)
		} else {
			readFloats(src, vec, e.Type == TypeF16, e.Name)
		}
	case TypeQ8:
		gpr := (e.Cols + e.GroupSize - 1) / e.GroupSize
		q, s := make([]int8, n), make([]float32, e.Rows*gpr)
		*mat = core.NewMatQ8(e.Rows, e.Cols, e.GroupSize, q, s)
		src.read(i8Bytes(q), e.Name+" values")
		readScales(src, s, e.Scale, e.Name+" scales")
	case TypeQ4:
		gpr := (e.Cols + e.GroupSize - 1) / e.GroupSize
		var cb [q4CodebookSize]byte
		src.read(cb[:], e.Name+" codebook")
		pk, s := make([]byte, e.Rows*((e.Cols+1)/2)), make([]float32, e.Rows*gpr)
		*mat = core.NewMatQ4(e.Rows, e.Cols, e.GroupSize, pk, [16]int8{}, s)
		for i, v := range cb {
			mat.Codebook[i] = int8(v)
		}
		src.read(pk, e.Name+" indices")
		readScales(src, s, e.Scale, e.Name+" scales")
	case TypeQK:
		readPacked(src, e, mat)
	}
	return p.tensorDone(e, src, at)
}

// tensorSource starts reading tensor e at the current offset: from the file
// itself when it is stored raw, else from its zstd frame, read whole and
// checked against the tensor's CRC before it is decompressed.
func (p *parser) tensorSource(e *dirEntry) (src *cReader, at int64, ok bool) {
	at = p.off
	p.ten = 0
	src = p.cReader
	if !e.rawData {
		if int64(cap(p.frame)) < e.Stored {
			p.frame = make([]byte, e.Stored)
		}
		fr := p.frame[:e.Stored]
		if !p.read(fr, e.Name+" zstd frame") {
			return nil, at, false
		}
		if p.tensorCRC && p.ten != e.crc {
			p.off = at
			p.fail(ErrChecksum, "tensor %s: CRC is %08x, its stored bytes give %08x", e.Name, e.crc, p.ten)
			return nil, at, false
		}
		dec, err := p.decoder()
		if err == nil {
			err = dec.Reset(bytes.NewReader(fr))
		}
		if err != nil {
			p.off = at
			p.fail(ErrCorrupt, "tensor %s: starting zstd: %v", e.Name, err)
			return nil, at, false
		}
		src = &cReader{r: p.dec, name: p.name, limit: e.Raw, secEnd: -1, over: ErrCorrupt,
			where: fmt.Sprintf(" (offset in the decompressed zstd frame of tensor %s, stored at file offset %d)", e.Name, at)}
	}
	return src, at, true
}

// tensorDone finishes tensor e read from src: a zstd frame must end with the
// tensor's bytes; raw bytes must match the tensor's CRC.
func (p *parser) tensorDone(e *dirEntry, src *cReader, at int64) bool {
	if src != p.cReader {
		if src.err == nil {
			if k, err := io.ReadFull(p.dec, src.buf[:1]); k > 0 {
				src.fail(ErrCorrupt, "the frame holds more than the tensor's %d bytes", e.Raw)
			} else if err != io.EOF {
				src.fail(zstdSentinel(err), "after the tensor: %v", err)
			}
		}
		if src.err != nil {
			p.err = src.err
			return false
		}
		return true
	}
	if p.err == nil && p.tensorCRC && p.ten != e.crc {
		p.off = at
		p.fail(ErrChecksum, "tensor %s: CRC is %08x, its stored bytes give %08x", e.Name, e.crc, p.ten)
	}
	return p.err == nil
}

// readFloats reads float32 values, or IEEE halves widened in place: the
// halves are read into the upper half of dst's bytes and widened front to
// back, which never overwrites a half before it is read.
func readFloats(src *cReader, dst []float32, half bool, what string) {
	b := f32Bytes(dst)
	if !half {
		src.read(b, what)
		return
	}
	n := len(dst)
	if !src.read(b[2*n:], what) {
		return
	}
	for i := range dst {
		dst[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*n+2*i:]))
	}
}

// readShuffled reads TypeF32S values: per block of shuffleBlock values (the
// last may be shorter), byte 0 of every value, then byte 1, 2 and 3. Zstd
// finds the runs in the sign/exponent plane that interleaved floats hide
// (stories260K's fp32 weights: 981 KB -> 885 KB at zstd level 7).
func readShuffled(src *cReader, dst []float32, scratch []byte, what string) {
	for j0 := 0; j0 < len(dst); j0 += shuffleBlock {
		k := min(shuffleBlock, len(dst)-j0)
		buf := scratch[:4*k]
		if !src.read(buf, what) {
			return
		}
		out := f32Bytes(dst[j0 : j0+k])
		for i := 0; i < k; i++ {
			out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = buf[i], buf[k+i], buf[2*k+i], buf[3*k+i]
		}
	}
}

// halfToFloat widens an IEEE 754 binary16 value exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0: // zero or subnormal: mant * 2^-24, exact in float32
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(f) | sign)
	case 0x1f: // infinity or NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
