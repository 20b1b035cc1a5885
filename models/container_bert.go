package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"mote/core"
)

// Encoders and classification heads in the mote container (FORMAT.md,
// "Encoders" and "Classification heads"). Each is marked by a preamble flag
// that version 1 readers of language models reject as unsupported, so the
// payload has its own section bodies and tensor names, in the same framing:
// sections with CRCs, the same directory entries and tensor types, the same
// compression modes, limits and checks.
//
// Why not a new container version: the framing, tensor types and checksums
// are unchanged, and FORMAT.md's versioning rules make a preamble flag the
// way to add what an older reader must refuse.

// Preamble flags of the container kinds defined here.
const (
	flagEncoder = 1 << 1 // the payload is a BERT encoder
	flagHead    = 1 << 2 // the payload is a classification head
)

// Fixed sizes, as tabulated in FORMAT.md (TestFormatEncoderSizes).
const (
	encConfigSize  = 37 // encoder config section body
	wpHeaderSize   = 28 // fixed part of the WordPiece tokenizer section body
	headConfigSize = 9  // head config section body
	noTokenID      = math.MaxUint32
	maxNotesBytes  = 1 << 16
	maxLabelBytes  = 1 << 10
)

// Encoder tensor names (GGUF's, without ".weight"): code 0 is a literal
// name; codes 16.. are per layer, followed by the layer in the directory.
var encGlobalNames = map[uint8]string{1: "token_embd", 2: "position_embd", 3: "token_types",
	4: "token_embd_norm", 5: "token_embd_norm.bias"}

var encLayerNames = [...]string{
	"attn_q", "attn_q.bias", "attn_q.min",
	"attn_k", "attn_k.bias", "attn_k.min",
	"attn_v", "attn_v.bias", "attn_v.min",
	"attn_output", "attn_output.bias", "attn_output.min",
	"attn_output_norm", "attn_output_norm.bias",
	"ffn_up", "ffn_up.bias", "ffn_up.min",
	"ffn_down", "ffn_down.bias", "ffn_down.min",
	"layer_output_norm", "layer_output_norm.bias",
}

const encLayerFirst = 16

// Head tensor names.
var headNames = map[uint8]string{1: "head", 2: "head.bias"}

// extSlot is one tensor an encoder or head may hold, and where it goes.
type extSlot struct {
	code       uint8
	layer      int
	name       string
	rows, cols int // cols of a min: the groups per row, known once its matrix is listed
	vector     bool
	min        *core.Linear // a Linear's minimums: optional, f32/f16, rows x groups
	mat        *core.Mat
	vec        *[]float32
}

func encName(code uint8, layer int) string {
	if code >= encLayerFirst {
		return "blk." + strconv.Itoa(layer) + "." + encLayerNames[code-encLayerFirst]
	}
	return encGlobalNames[code]
}

// encoderSlots lists m's tensors in canonical (writing) order, with their
// destinations in m (vectors are allocated here).
func encoderSlots(m *core.Bert) []extSlot {
	c, w := &m.Config, &m.Weights
	d, h := c.Dim, c.HiddenDim
	var s []extSlot
	add := func(code uint8, layer, rows, cols int, mat *core.Mat, vec *[]float32) {
		s = append(s, extSlot{code: code, layer: layer, name: encName(code, layer), rows: rows, cols: cols,
			vector: vec != nil, mat: mat, vec: vec})
	}
	add(1, 0, c.VocabSize, d, &w.TokenEmbedding, nil)
	add(2, 0, c.SeqLen, d, &w.PosEmbedding, nil)
	add(3, 0, c.TypeVocab, d, &w.TypeEmbedding, nil)
	add(4, 0, 1, d, nil, &w.EmbNorm)
	add(5, 0, 1, d, nil, &w.EmbNormB)
	for l := range w.Layers {
		ly := &w.Layers[l]
		code := uint8(encLayerFirst)
		lin := func(ln *core.Linear, rows, cols int) {
			add(code, l, rows, cols, &ln.W, nil)
			add(code+1, l, 1, rows, nil, &ln.B)
			s = append(s, extSlot{code: code + 2, layer: l, name: encName(code+2, l), rows: rows, min: ln})
			code += 3
		}
		norm := func(g, b *[]float32) {
			add(code, l, 1, d, nil, g)
			add(code+1, l, 1, d, nil, b)
			code += 2
		}
		lin(&ly.Wq, d, d)
		lin(&ly.Wk, d, d)
		lin(&ly.Wv, d, d)
		lin(&ly.Wo, d, d)
		norm(&ly.AttNorm, &ly.AttNormB)
		lin(&ly.Up, h, d)
		lin(&ly.Down, d, h)
		norm(&ly.OutNorm, &ly.OutNormB)
	}
	return s
}

func headSlots(h *core.Head) []extSlot {
	return []extSlot{
		{code: 1, name: "head", rows: len(h.Labels), cols: h.Dim, vec: &h.W},
		{code: 2, name: "head.bias", rows: 1, cols: len(h.Labels), vector: true, vec: &h.B},
	}
}

// Reading.

// readEncoderContainer reads an encoder container positioned at its magic.
func readEncoderContainer(b *binReader, info *Info) (*core.Bert, error) {
	x, err := readExt(b, flagEncoder)
	if err != nil {
		return nil, err
	}
	info.Version, info.Compress, info.Checksums = ContainerVersion, x.p.mode.String(), "verified"
	return x.enc, nil
}

// isEncoderContainer reports whether a container's preamble says encoder.
func isEncoderContainer(data []byte) bool {
	return len(data) >= preambleSize && string(data[:4]) == moteMagic && data[7]&flagEncoder != 0
}

// HeadFile is a classification head as stored: the head and its notes
// (free text: what it was trained on, with what encoder, how well it did).
type HeadFile struct {
	Head  *core.Head
	Notes string
}

// OpenHead reads a classification head container.
func OpenHead(path string) (*HeadFile, error) {
	data, err := readFileLimited(path, maxHeadFile)
	if err != nil {
		return nil, err
	}
	return ReadHeadBytes(path, data)
}

// maxHeadFile bounds a head file read by OpenHead (a 4096-label head over
// 32768 dims would be 512 MiB; real ones are kilobytes).
const maxHeadFile = 1 << 30

func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not a file", path)
	}
	if st.Size() > limit {
		return nil, fileErr(path, 0, ErrLimit, "%d bytes, more than the limit %d", st.Size(), limit)
	}
	return io.ReadAll(f)
}

// ReadHeadBytes reads a classification head held in memory.
func ReadHeadBytes(name string, data []byte) (*HeadFile, error) {
	b := newBinReader(name, bufio.NewReaderSize(bytes.NewReader(data), 1<<16), int64(len(data)))
	x, err := readExt(b, flagHead)
	if err != nil {
		return nil, err
	}
	if err := x.head.Check(); err != nil {
		return nil, fileErr(name, b.off, ErrCorrupt, "%v", err)
	}
	return &HeadFile{Head: x.head, Notes: x.notes}, nil
}

// extReader reads an encoder or head container.
type extReader struct {
	p     *parser // the shared framing state: reader, CRCs, zstd decoder, mode
	kind  byte    // flagEncoder or flagHead
	enc   *core.Bert
	head  *core.Head
	notes string
	slots []extSlot
	dir   []extEntry
}

type extEntry struct {
	dirEntry
	slot int
}

func (x *extReader) what() string {
	if x.kind == flagHead {
		return "classification head"
	}
	return "encoder"
}

// readExt reads the preamble and the payload of a container of the given kind.
func readExt(b *binReader, kind byte) (*extReader, error) {
	var pre [preambleSize]byte
	b.full(pre[:6], "preamble")
	if b.err != nil {
		return nil, b.err
	}
	if string(pre[:4]) != moteMagic {
		return nil, fileErr(b.name, 0, ErrBadMagic, "magic %q is not %q", pre[:4], moteMagic)
	}
	if v := binary.LittleEndian.Uint16(pre[4:]); v != ContainerVersion {
		return nil, fileErr(b.name, 4, ErrUnsupported, "container version %d (this reader reads version %d)", v, ContainerVersion)
	}
	b.full(pre[6:], "preamble")
	if b.err != nil {
		return nil, b.err
	}
	if got, want := binary.LittleEndian.Uint32(pre[16:]), crc32.Checksum(pre[:16], castagnoli); got != want {
		return nil, fileErr(b.name, 16, ErrChecksum, "preamble CRC is %08x, its bytes give %08x", got, want)
	}
	x := &extReader{kind: kind}
	mode, flags := Compression(pre[6]), pre[7]
	payload := binary.LittleEndian.Uint64(pre[8:])
	switch {
	case mode > CompressTensor:
		return nil, fileErr(b.name, 6, ErrUnsupported, "compression mode %d", mode)
	case flags&^(flagTensorCRC|flagEncoder|flagHead) != 0:
		return nil, fileErr(b.name, 7, ErrUnsupported, "unknown flags %#02x", flags&^(flagTensorCRC|flagEncoder|flagHead))
	case flags&(flagEncoder|flagHead) != kind:
		what := "a language model"
		switch flags & (flagEncoder | flagHead) {
		case flagEncoder:
			what = "an encoder"
		case flagHead:
			what = "a classification head"
		case flagEncoder | flagHead:
			what = "both an encoder and a head"
		}
		return nil, fileErr(b.name, 7, ErrUnsupported, "the container holds %s, not a %s", what, x.what())
	case payload > maxPayload:
		return nil, fileErr(b.name, 8, ErrLimit, "payload length %d is above the limit %d", payload, int64(maxPayload))
	}
	plen := int64(payload)
	if rem := b.remaining(); rem >= 0 && rem != plen {
		if rem < plen {
			return nil, fileErr(b.name, preambleSize, ErrTruncated, "the preamble announces a payload of %d bytes, the file has %d after it", payload, rem)
		}
		return nil, fileErr(b.name, preambleSize, ErrCorrupt, "%d bytes after the payload of %d bytes", rem-plen, payload)
	}
	ci := &ContainerInfo{Version: ContainerVersion, Compression: mode, TensorCRCs: flags&flagTensorCRC != 0, PayloadBytes: plen}
	r := &cReader{r: b.r, name: b.name, off: b.off, limit: b.off + plen, secEnd: -1, over: ErrTruncated}
	p := &parser{cReader: r, ci: ci, mode: mode, tensorCRC: ci.TensorCRCs}
	x.p = p
	defer p.closeDecoder()
	var counted *countingReader
	if mode == CompressZstd {
		counted = &countingReader{r: io.LimitReader(b.r, plen)}
		dec, err := p.decoder()
		if err == nil {
			err = dec.Reset(counted)
		}
		if err != nil {
			return nil, fileErr(b.name, b.off, ErrCorrupt, "starting zstd: %v", err)
		}
		r.r, r.off, r.over = dec, 0, ErrLimit
		r.limit = maxExpansion*plen + expansionSlack
		r.where = " (offset in the decompressed payload)"
	}
	if x.sections(); p.err != nil {
		return nil, p.err
	}
	if mode == CompressZstd {
		if n, err := io.ReadFull(p.dec, r.buf[:1]); n > 0 || err != io.EOF {
			if n > 0 {
				r.fail(ErrCorrupt, "data after the end section")
			} else {
				r.fail(zstdSentinel(err), "after the end section: %v", err)
			}
			return nil, r.err
		}
		b.off += counted.n
		if counted.n != plen {
			return nil, fileErr(b.name, b.off, ErrCorrupt, "the zstd stream ends %d bytes before the payload does", plen-counted.n)
		}
	} else {
		if r.off != r.limit {
			r.fail(ErrCorrupt, "%d payload bytes after the end section", r.limit-r.off)
			return nil, r.err
		}
		b.off = r.off
	}
	if b.size < 0 {
		if n, _ := io.ReadFull(b.r, r.buf[:1]); n > 0 {
			return nil, fileErr(b.name, b.off, ErrCorrupt, "data after the payload")
		}
	}
	return x, nil
}

func (x *extReader) sectionName(kind uint8) string {
	switch {
	case kind == secConfig && x.kind == flagHead:
		return "head config"
	case kind == secConfig:
		return "encoder config"
	case kind == secTokenizer && x.kind == flagHead:
		return "labels"
	case kind == secTokenizer:
		return "wordpiece tokenizer"
	}
	return sectionName(kind)
}

// sections reads the section sequence up to the end marker: config, then
// the tokenizer (encoders) or labels (heads), directory, data, end, each
// exactly once and in that order; ancillary sections anywhere after the
// config are checked and skipped.
func (x *extReader) sections() {
	p := x.p
	var seen [secAncillary]bool
	last := -1
	for p.err == nil {
		start := p.off
		var hdr [sectionHeaderSize]byte
		p.secEnd = -1
		if !p.read(hdr[:], "section header") {
			return
		}
		kind := hdr[0]
		length := binary.LittleEndian.Uint64(hdr[1:])
		want := binary.LittleEndian.Uint32(hdr[9:])
		p.sec = crc32.Checksum(hdr[:9], castagnoli)
		name := x.sectionName(kind)
		if rem := p.limit - p.off; length > uint64(rem) {
			p.off = start
			p.fail(p.over, "%s section of %d bytes, %d payload bytes left", name, length, rem)
			return
		}
		p.secEnd = p.off + int64(length)
		p.ci.Sections = append(p.ci.Sections, SectionInfo{Kind: kind, Name: name, Bytes: int64(length)})
		if kind != secConfig && !seen[secConfig] {
			p.off = start
			p.fail(ErrCorrupt, "%s section before the %s section", name, x.sectionName(secConfig))
			return
		}
		if kind < secAncillary {
			o, known := sectionOrder[kind]
			switch {
			case !known:
				p.fail(ErrUnsupported, "section kind %d (critical; unknown to format version %d)", kind, ContainerVersion)
			case seen[kind]:
				p.fail(ErrCorrupt, "second %s section", name)
			case o <= last:
				p.fail(ErrCorrupt, "%s section out of order", name)
			case kind == secDirectory && !seen[secTokenizer]:
				p.fail(ErrCorrupt, "no %s section before the tensor directory", x.sectionName(secTokenizer))
			case (kind == secData || kind == secEnd) && !seen[secDirectory]:
				p.fail(ErrCorrupt, "%s section before the tensor directory", name)
			case kind == secEnd && !seen[secData]:
				p.fail(ErrCorrupt, "no tensor data section")
			}
			if p.err != nil {
				p.off = start
				return
			}
			seen[kind], last = true, o
		}
		switch kind {
		case secConfig, secTokenizer, secDirectory:
			x.metadata(kind, int64(length), want)
			continue
		case secData:
			x.data(int64(length))
		case secEnd:
			if length != 0 {
				p.fail(ErrCorrupt, "end section has a body of %d bytes", length)
			}
		default:
			p.skip(int64(length), name)
		}
		if !p.sectionDone(name, start, want) || kind == secEnd {
			return
		}
	}
}

// metadata reads a metadata section's body, checks its CRC, then parses it
// from memory (as the language-model reader does).
func (x *extReader) metadata(kind uint8, length int64, want uint32) {
	p := x.p
	name := x.sectionName(kind)
	start := p.off - sectionHeaderSize
	if length > maxMetaSection {
		p.off = start
		p.fail(ErrLimit, "%s section of %d bytes, above the limit %d", name, length, maxMetaSection)
		return
	}
	body := make([]byte, length)
	if !p.read(body, name) {
		return
	}
	if p.sec != want {
		p.off = start
		p.fail(ErrChecksum, "%s section CRC is %08x, its bytes give %08x", name, want, p.sec)
		return
	}
	outer := p.cReader
	p.cReader = &cReader{r: bytes.NewReader(body), name: p.name, where: p.where, off: p.off - length,
		limit: p.off, secEnd: p.off, over: ErrCorrupt}
	switch {
	case kind == secConfig && x.kind == flagEncoder:
		x.encoderConfig(length)
	case kind == secConfig:
		x.headConfig(length)
	case kind == secTokenizer && x.kind == flagEncoder:
		x.wordPiece(length)
	case kind == secTokenizer:
		x.labels(length)
	case kind == secDirectory:
		x.directory(outer.limit)
	}
	if p.err == nil && p.off != p.secEnd {
		p.fail(ErrCorrupt, "%d unread bytes at the end of the %s section", p.secEnd-p.off, name)
	}
	inner := p.cReader
	p.cReader = outer
	p.err = inner.err
}

func (x *extReader) encoderConfig(length int64) {
	p := x.p
	if length != encConfigSize {
		p.fail(ErrCorrupt, "encoder config section has %d bytes, want %d", length, encConfigSize)
		return
	}
	var v [7]uint32
	for i, what := range []string{"dim", "hidden_dim", "n_layers", "n_heads", "vocab_size", "seq_len", "type_vocab"} {
		v[i] = p.u32(what)
	}
	eps := p.f32("norm_eps")
	act := p.u32("act_group")
	flags := p.u8("config flags")
	if p.err != nil {
		return
	}
	for i, f := range v {
		if f > math.MaxInt32 {
			p.fail(ErrLimit, "encoder config field %d is %d", i, f)
			return
		}
	}
	c := core.BertConfig{Dim: int(v[0]), HiddenDim: int(v[1]), NLayers: int(v[2]), NHeads: int(v[3]),
		VocabSize: int(v[4]), SeqLen: int(v[5]), TypeVocab: int(v[6]), NormEps: eps}
	switch err := c.Validate(); {
	case err != nil:
		p.fail(ErrLimit, "%v", err)
	case act > maxGroupSize:
		p.fail(ErrLimit, "activation group %d is above the limit %d", act, maxGroupSize)
	case flags != 0:
		p.fail(ErrUnsupported, "unknown encoder config flags %#02x", flags)
	}
	if p.err != nil {
		return
	}
	x.enc = &core.Bert{Config: c, ActGroup: int(act)}
	x.enc.Weights.Layers = make([]core.BertLayer, c.NLayers)
	x.slots = encoderSlots(x.enc)
}

func (x *extReader) headConfig(length int64) {
	p := x.p
	if length != headConfigSize {
		p.fail(ErrCorrupt, "head config section has %d bytes, want %d", length, headConfigSize)
		return
	}
	dim, n := p.u32("dim"), p.u32("label count")
	flags := p.u8("head flags")
	switch {
	case p.err != nil:
		return
	case dim == 0 || dim > core.MaxDim:
		p.fail(ErrLimit, "head input width %d outside 1..%d", dim, core.MaxDim)
	case n < 2 || n > core.MaxLabels:
		p.fail(ErrLimit, "%d labels outside 2..%d", n, core.MaxLabels)
	case flags != 0:
		p.fail(ErrUnsupported, "unknown head flags %#02x", flags)
	}
	if p.err != nil {
		return
	}
	x.head = &core.Head{Dim: int(dim), Labels: make([]string, n)}
	x.slots = headSlots(x.head)
}

// wordPiece reads the WordPiece tokenizer section (FORMAT.md).
func (x *extReader) wordPiece(length int64) {
	p := x.p
	c := &x.enc.Config
	var v [7]uint32
	for i, what := range []string{"token count", "cls", "sep", "unk", "pad", "mask", "special count"} {
		v[i] = p.u32(what)
	}
	if p.err != nil {
		return
	}
	n, ns := int64(v[0]), int64(v[6])
	id := func(u uint32) int {
		if u == noTokenID {
			return -1
		}
		return int(min(u, math.MaxInt32))
	}
	switch {
	case n != int64(c.VocabSize):
		p.fail(ErrCorrupt, "tokenizer has %d tokens, the config %d", n, c.VocabSize)
	case ns > n:
		p.fail(ErrCorrupt, "%d special tokens in a vocabulary of %d", ns, n)
	case ns+n > length-wpHeaderSize: // a byte at least per special id and per piece
		p.fail(ErrCorrupt, "%d tokens cannot fit in a tokenizer section of %d bytes", n, length)
	}
	if p.err != nil {
		return
	}
	special := make([]int, ns)
	prev := -1
	for i := range special {
		s := int(p.uvarint("special token id", uint64(n-1)))
		if p.err != nil {
			return
		}
		if s <= prev {
			p.fail(ErrCorrupt, "special token ids not increasing (%d after %d)", s, prev)
			return
		}
		special[i], prev = s, s
	}
	vocab := make([]string, n)
	var buf []byte
	for i := range vocab {
		l := p.uvarint("piece length", 2*maxTokenBytes+1)
		if p.err != nil {
			return
		}
		plen := l >> 1
		if cap(buf) < int(plen) {
			buf = make([]byte, plen)
		}
		buf = buf[:plen]
		if !p.read(buf, "piece "+strconv.Itoa(i)) {
			return
		}
		if l&1 != 0 {
			vocab[i] = wpWordStart + string(buf)
		} else {
			vocab[i] = string(buf)
		}
	}
	t, err := core.NewWordPiece(vocab, special, id(v[1]), id(v[2]), id(v[3]), id(v[4]), id(v[5]))
	if err != nil {
		p.fail(ErrCorrupt, "%v", err)
		return
	}
	x.enc.Tokenizer = t
	p.ci.Tokens = int(n)
}

// wpWordStart is the prefix of word-start pieces, stored as a bit.
const wpWordStart = "\u2581"

// labels reads the head's labels and notes.
func (x *extReader) labels(length int64) {
	p := x.p
	h := x.head
	if int64(len(h.Labels))+1 > length {
		p.fail(ErrCorrupt, "%d labels cannot fit in a labels section of %d bytes", len(h.Labels), length)
		return
	}
	read := func(what string, limit uint64) string {
		l := p.uvarint(what+" length", limit)
		if p.err != nil {
			return ""
		}
		buf := make([]byte, l)
		if !p.read(buf, what) {
			return ""
		}
		if !utf8.Valid(buf) {
			p.fail(ErrCorrupt, "%s is not UTF-8", what)
		}
		return string(buf)
	}
	for i := range h.Labels {
		h.Labels[i] = read("label "+strconv.Itoa(i), maxLabelBytes)
		if p.err != nil {
			return
		}
		if h.Labels[i] == "" {
			p.fail(ErrCorrupt, "label %d is empty", i)
			return
		}
	}
	x.notes = read("notes", maxNotesBytes)
}

// directory reads the tensor directory and checks it against the config.
func (x *extReader) directory(limit int64) {
	p := x.p
	if x.slots == nil { // the tokenizer or labels could not be read: p.err is set
		return
	}
	count := p.uvarint("tensor count", uint64(len(x.slots)))
	if p.err != nil {
		return
	}
	x.dir = make([]extEntry, 0, count)
	seen := make([]int, len(x.slots)) // 1 + directory index
	var totalStored, totalRaw int64
	for i := 0; i < int(count) && p.err == nil; i++ {
		at := p.off
		code := p.u8("tensor name code")
		layer := 0
		var name string
		switch {
		case p.err != nil:
			return
		case code == nameLiteral:
			l := p.u8("tensor name length")
			var nb [maxNameBytes]byte
			if !p.read(nb[:l], "tensor name") {
				return
			}
			name = string(nb[:l])
		case x.kind == flagEncoder && code >= encLayerFirst && int(code) < encLayerFirst+len(encLayerNames):
			layer = int(p.uvarint("layer", uint64(x.enc.Config.NLayers-1)))
			name = encName(code, layer)
		case x.kind == flagEncoder && encGlobalNames[code] != "":
			name = encGlobalNames[code]
		case x.kind == flagHead && headNames[code] != "":
			name = headNames[code]
		default:
			p.off = at
			p.fail(ErrUnsupported, "tensor name code %d in a %s", code, x.what())
			return
		}
		if p.err != nil {
			return
		}
		si := -1
		for k := range x.slots {
			if x.slots[k].name == name {
				si = k
				break
			}
		}
		switch {
		case si < 0:
			p.fail(ErrUnsupported, "tensor %q is not one a version %d %s has", name, ContainerVersion, x.what())
		case seen[si] != 0:
			p.fail(ErrCorrupt, "tensor %s listed twice", name)
		}
		if p.err != nil {
			p.off = at
			return
		}
		s := &x.slots[si]
		e := extEntry{dirEntry: dirEntry{TensorInfo: TensorInfo{Name: name}}, slot: si}
		seen[si] = len(x.dir) + 1
		x.entry(&e.dirEntry)
		if p.err != nil {
			return
		}
		float := e.Type == TypeF32 || e.Type == TypeF16
		rows, cols := s.rows, s.cols
		if s.min != nil {
			cols = e.Cols // checked against its matrix below
		}
		switch {
		case e.Rows != rows || e.Cols != cols:
			p.fail(ErrCorrupt, "tensor %s is %dx%d, the config says %dx%d", name, e.Rows, e.Cols, rows, cols)
		case (s.vector || s.min != nil || x.kind == flagHead) && !float:
			p.fail(ErrUnsupported, "tensor %s has type %v (only f32 and f16)", name, e.Type)
		}
		if p.err != nil {
			return
		}
		totalStored += e.Stored
		totalRaw += e.Raw
		x.dir = append(x.dir, e)
		p.ci.Tensors = append(p.ci.Tensors, e.TensorInfo)
	}
	if p.err != nil {
		return
	}
	// every tensor but the minimums is required; a minimum needs a grouped
	// matrix and one value per group of it
	for k := range x.slots {
		s := &x.slots[k]
		if s.min == nil {
			if seen[k] == 0 {
				p.fail(ErrCorrupt, "missing tensor %s", s.name)
				return
			}
			continue
		}
		if seen[k] == 0 {
			continue
		}
		me, mine := x.dir[seen[k-2]-1], x.dir[seen[k]-1] // the matrix is listed two slots before its minimums
		if !me.Type.grouped() || mine.Cols != (me.Cols+me.GroupSize-1)/me.GroupSize {
			p.fail(ErrCorrupt, "tensor %s has %d columns; its matrix (%v, groups of %d over %d columns) needs one per group",
				s.name, mine.Cols, me.Type, me.GroupSize, me.Cols)
			return
		}
	}
	left := limit - p.secEnd - 2*sectionHeaderSize
	switch {
	case p.mode == CompressZstd && totalRaw > left:
		p.fail(ErrLimit, "the directory describes %d bytes of tensor data; the compressed payload may expand to %d more at most", totalRaw, left)
	case p.mode != CompressZstd && totalStored > left:
		p.fail(ErrTruncated, "the directory describes %d bytes of tensor data, the payload has %d left", totalStored, left)
	case p.mode == CompressTensor && totalRaw > maxExpansion*totalStored+expansionSlack:
		p.fail(ErrLimit, "%d bytes of tensors would decompress to %d, more than the limit %dx + %d", totalStored, totalRaw, maxExpansion, expansionSlack)
	}
}

// entry reads the rest of a directory entry after its name (FORMAT.md,
// Tensor directory) and checks its type, shape bounds and stored size.
func (x *extReader) entry(e *dirEntry) {
	p := x.p
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
	case e.Type > TypeQK: // f32s (5) is for language models only
		p.fail(ErrUnsupported, "tensor %s has type %d (reserved in version %d)", e.Name, e.Type, ContainerVersion)
	case e.Type == TypeQK && (e.Bits < minPackedBits || e.Bits > maxPackedBits):
		p.fail(ErrUnsupported, "tensor %s has %d-bit indices (%d..%d supported)", e.Name, e.Bits, minPackedBits, maxPackedBits)
	case e.Type == TypeQK && cbCoding > codebookExplicit:
		p.fail(ErrUnsupported, "tensor %s has codebook coding %d", e.Name, cbCoding)
	case e.Type.grouped() && e.Scale > ScaleLog8:
		p.fail(ErrUnsupported, "tensor %s has scale type %d", e.Name, e.Scale)
	case e.Type.grouped() && e.GroupSize == 0:
		p.fail(ErrCorrupt, "tensor %s has group size 0", e.Name)
	case e.Rows == 0 || e.Cols == 0:
		p.fail(ErrCorrupt, "tensor %s is %dx%d", e.Name, e.Rows, e.Cols)
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
	if p.err == nil && e.Raw > maxAlloc {
		p.fail(ErrLimit, "tensor %s: %d bytes exceed the %d-byte allocation limit", e.Name, e.Raw, int64(maxAlloc))
	}
}

// data reads the tensor data section.
func (x *extReader) data(length int64) {
	p := x.p
	var total int64
	for _, e := range x.dir {
		total += e.Stored
	}
	if total != length {
		p.fail(ErrCorrupt, "tensor data section has %d bytes, the directory %d", length, total)
		return
	}
	for i := range x.dir {
		if !x.tensor(&x.dir[i]) {
			return
		}
	}
}

// tensor reads one tensor's stored bytes (raw, or a zstd frame in
// per-tensor mode) into its final slices.
func (x *extReader) tensor(e *extEntry) bool {
	p := x.p
	src, at, ok := p.tensorSource(&e.dirEntry)
	if !ok {
		return false
	}
	s := &x.slots[e.slot]
	n := e.Rows * e.Cols
	switch {
	case s.min != nil:
		s.min.Min = make([]float32, n)
		readFloats(src, s.min.Min, e.Type == TypeF16, e.Name)
	case s.vec != nil:
		*s.vec = make([]float32, n)
		readFloats(src, *s.vec, e.Type == TypeF16, e.Name)
	default:
		readMat(src, &e.dirEntry, s.mat)
	}
	return p.tensorDone(&e.dirEntry, src, at)
}

// readMat reads a matrix of any tensor type into mat.
func readMat(src *cReader, e *dirEntry, mat *core.Mat) {
	n := e.Rows * e.Cols
	gpr := 0
	if e.Type.grouped() {
		gpr = (e.Cols + e.GroupSize - 1) / e.GroupSize
	}
	switch e.Type {
	case TypeF32, TypeF16:
		f := make([]float32, n)
		*mat = core.NewMatF32(e.Rows, e.Cols, f)
		readFloats(src, f, e.Type == TypeF16, e.Name)
	case TypeQ8:
		q, s := make([]int8, n), make([]float32, e.Rows*gpr)
		*mat = core.NewMatQ8(e.Rows, e.Cols, e.GroupSize, q, s)
		src.read(i8Bytes(q), e.Name+" values")
		readScales(src, s, e.Scale, e.Name+" scales")
	case TypeQ4:
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
}

// Writing.

// WriteEncoder writes an encoder as a mote container (FORMAT.md,
// Encoders). The options are WriteContainer's; Packed names matrices
// "blk.N.attn_q", "token_embd" and so on.
func WriteEncoder(w io.Writer, m *core.Bert, opts WriteOptions) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("models: cannot write an invalid encoder: %w", err)
	}
	if m.Tokenizer == nil {
		return fmt.Errorf("models: an encoder needs its tokenizer")
	}
	if m.ActGroup > maxGroupSize {
		return fmt.Errorf("models: activation group %d above the limit %d", m.ActGroup, maxGroupSize)
	}
	cw, err := newExtWriter(opts, flagEncoder)
	if err != nil {
		return err
	}
	cw.config = encodeEncoderConfig(m)
	if cw.tok, err = encodeWordPiece(m.Tokenizer); err != nil {
		return err
	}
	used := 0
	for _, s := range encoderSlots(m) {
		if s.min != nil {
			if s.min.Min == nil {
				continue
			}
			s.cols = len(s.min.Min) / s.rows
			s.vec = &s.min.Min
		}
		t, packed, err := cw.extTensor(s)
		if err != nil {
			return err
		}
		if packed {
			used++
		}
		cw.tensors = append(cw.tensors, t)
	}
	if used != len(opts.Packed) {
		return fmt.Errorf("models: %d packed tensors given, %d of them name a matrix of this encoder", len(opts.Packed), used)
	}
	if err := cw.prepare(); err != nil {
		return err
	}
	return cw.write(w)
}

// WriteHead writes a classification head as a mote container (FORMAT.md,
// Classification heads), with free-text notes. Heads are kept f32 (they
// are a few kilobytes); opts chooses compression and CRCs only.
func WriteHead(w io.Writer, h *core.Head, notes string, opts WriteOptions) error {
	if err := h.Check(); err != nil {
		return fmt.Errorf("models: cannot write an invalid head: %w", err)
	}
	if len(notes) > maxNotesBytes || !utf8.ValidString(notes) {
		return fmt.Errorf("models: head notes must be UTF-8 of at most %d bytes", maxNotesBytes)
	}
	opts.F16, opts.F16Scales, opts.Packed = false, false, nil
	cw, err := newExtWriter(opts, flagHead)
	if err != nil {
		return err
	}
	cw.config = binary.LittleEndian.AppendUint32(nil, uint32(h.Dim))
	cw.config = binary.LittleEndian.AppendUint32(cw.config, uint32(len(h.Labels)))
	cw.config = append(cw.config, 0)
	for _, l := range h.Labels {
		if l == "" || len(l) > maxLabelBytes || !utf8.ValidString(l) {
			return fmt.Errorf("models: label %q must be 1..%d bytes of UTF-8", l, maxLabelBytes)
		}
		cw.tok = binary.AppendUvarint(cw.tok, uint64(len(l)))
		cw.tok = append(cw.tok, l...)
	}
	cw.tok = binary.AppendUvarint(cw.tok, uint64(len(notes)))
	cw.tok = append(cw.tok, notes...)
	for _, s := range headSlots(h) {
		t, _, err := cw.extTensor(s)
		if err != nil {
			return err
		}
		cw.tensors = append(cw.tensors, t)
	}
	if err := cw.prepare(); err != nil {
		return err
	}
	return cw.write(w)
}

func newExtWriter(o WriteOptions, flag byte) (*containerWriter, error) {
	if o.Compression > CompressTensor {
		return nil, fmt.Errorf("models: compression mode %d", o.Compression)
	}
	if o.Level < 0 || o.Level > 22 {
		return nil, fmt.Errorf("models: zstd level %d outside 1..22", o.Level)
	}
	if o.Level == 0 {
		o.Level = DefaultZstdLevel
	}
	return &containerWriter{o: o, halves: make([]byte, 32<<10), flags: flag}, nil
}

// extTensor describes one tensor to write, as WriteContainer does for a
// language model's (halves and packed forms as the options ask).
func (cw *containerWriter) extTensor(s extSlot) (outTensor, bool, error) {
	o := cw.o
	t := outTensor{slot: slot{code: s.code, layer: s.layer, rows: s.rows, cols: s.cols, vector: s.vec != nil},
		typ: TypeF32, name: s.name}
	if s.vec != nil {
		t.vec = *s.vec
		t.raw = rawSize(TypeF32, s.rows, s.cols, 0, 0, 0, false)
		return t, false, nil
	}
	t.mat = s.mat
	if p := o.Packed[s.name]; p != nil {
		if err := checkPacked(p, t.mat); err != nil {
			return t, false, fmt.Errorf("models: %s: %w", s.name, err)
		}
		t.typ, t.gs, t.scale, t.packed = TypeQK, p.GroupSize, p.Scale, p
		t.raw = p.RawBytes()
		return t, true, nil
	}
	switch t.mat.Type {
	case core.F32:
		if o.F16 {
			t.typ = TypeF16
		}
	case core.Q8, core.Q4:
		t.typ, t.gs = TypeQ8, t.mat.GroupSize
		if t.mat.Type == core.Q4 {
			t.typ = TypeQ4
		}
		if o.F16Scales {
			t.scale = ScaleF16
		}
		if t.gs > maxGroupSize {
			return t, false, fmt.Errorf("models: %s has group size %d, above the limit %d", s.name, t.gs, maxGroupSize)
		}
	default:
		return t, false, fmt.Errorf("models: %s has matrix type %v, which the container cannot store", s.name, t.mat.Type)
	}
	t.raw = rawSize(t.typ, s.rows, s.cols, t.gs, t.scale, 0, false)
	return t, false, nil
}

// encodeEncoderConfig lays out the encoder config section body.
func encodeEncoderConfig(m *core.Bert) []byte {
	c := &m.Config
	b := make([]byte, 0, encConfigSize)
	for _, v := range []int{c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.VocabSize, c.SeqLen, c.TypeVocab} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.NormEps))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.ActGroup))
	return append(b, 0)
}

// encodeWordPiece lays out the WordPiece tokenizer section body: the
// header, the special ids (ascending), then each piece as a uvarint of its
// length (without a U+2581 prefix) times two plus one when it has the
// prefix, then its bytes.
func encodeWordPiece(t *core.WordPiece) ([]byte, error) {
	id := func(i int) uint32 {
		if i < 0 {
			return noTokenID
		}
		return uint32(i)
	}
	special := make([]int, 0, len(t.Special))
	for i := range t.Vocab {
		if t.IsSpecial(i) {
			special = append(special, i)
		}
	}
	b := make([]byte, 0, wpHeaderSize+8*len(t.Vocab))
	for _, v := range []uint32{uint32(len(t.Vocab)), id(t.CLS), id(t.SEP), id(t.UNK), id(t.PAD), id(t.MASK), uint32(len(special))} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	for _, s := range special {
		b = binary.AppendUvarint(b, uint64(s))
	}
	for i, p := range t.Vocab {
		rest, start := strings.CutPrefix(p, wpWordStart)
		if len(rest) > maxTokenBytes {
			return nil, fmt.Errorf("models: piece %d has %d bytes, above the limit %d", i, len(rest), maxTokenBytes)
		}
		l := uint64(len(rest)) << 1
		if start {
			l |= 1
		}
		b = binary.AppendUvarint(b, l)
		b = append(b, rest...)
	}
	return b, nil
}
