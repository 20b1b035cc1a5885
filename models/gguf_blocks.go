package models

import (
	"encoding/binary"
	"unsafe"

	"mote/core"
)

// ggml's block formats, as mote holds them in memory. Each block of a row
// becomes int8 values and float32 scales of core.Q8, exactly:
//
//	Q8_0  value = d·q, q in -128..127         -> Q8, groups of 32, scale d
//	Q5_0  value = d·(q-16), q in 0..31        -> Q8, groups of 32, values q-16, scale d
//	Q6_K  value = d·sc·(q-32), q in 0..63     -> Q8, groups of 16, values q-32, scale d·sc
//	Q4_K  value = d·sc·q - dmin·m, q in 0..15 -> Q8, groups of 32, values q, scale d·sc,
//	                                             plus a minimum dmin·m per group
//
// d and dmin are float16 and sc, m at most 8-bit integers, so d·sc and
// dmin·m are exact in float32. Q4_K's minimums make it asymmetric, which no
// symmetric int8 grid holds exactly; core.Linear keeps them beside the
// matrix (the encoder subtracts Min·(group sums of x)), so GGUF's weights
// are used exactly as stored rather than re-quantized.
//
// Block layouts (bytes), from ggml's block_q*_* structs (sizes asserted in
// TestGGMLBlockSizes):
//
//	Q8_0 (34):  d f16 | qs[32] int8
//	Q5_0 (22):  d f16 | qh u32 (bit j: the 5th bit of value j) | qs[16]: value j in
//	            the low nibble of byte j, value j+16 in its high nibble
//	Q6_K (210): ql[128] low 4 bits | qh[64] high 2 bits | scales[16] int8 | d f16
//	Q4_K (144): d f16 | dmin f16 | scales[12]: 8 6-bit scales and 8 6-bit mins | qs[128]
type blockFormat struct {
	elems, bytes int  // values and bytes per block
	group        int  // values per scale in memory
	hasMin       bool // asymmetric: minimums per group
	// decode writes a block's elems values to q and its elems/group scales
	// (and minimums) to s (and mn)
	decode func(blk []byte, q []int8, s, mn []float32)
}

var blockFormats = map[uint32]*blockFormat{
	ggmlQ8_0: {32, 34, 32, false, decodeQ8_0},
	ggmlQ5_0: {32, 22, 32, false, decodeQ5_0},
	ggmlQ6_K: {256, 210, 16, false, decodeQ6_K},
	ggmlQ4_K: {256, 144, 32, true, decodeQ4_K},
}

func f16At(b []byte) float32 { return halfToFloat32(binary.LittleEndian.Uint16(b)) }

func decodeQ8_0(blk []byte, q []int8, s, _ []float32) {
	s[0] = f16At(blk)
	for j, v := range blk[2:34] {
		q[j] = int8(v)
	}
}

func decodeQ5_0(blk []byte, q []int8, s, _ []float32) {
	s[0] = f16At(blk)
	qh := binary.LittleEndian.Uint32(blk[2:])
	qs := blk[6:22]
	for j, b := range qs {
		lo := b&15 | byte(qh>>j&1)<<4
		hi := b>>4 | byte(qh>>(j+16)&1)<<4
		q[j] = int8(lo) - 16
		q[j+16] = int8(hi) - 16
	}
}

func decodeQ6_K(blk []byte, q []int8, s, _ []float32) {
	d := f16At(blk[208:])
	for g, sc := range blk[192:208] {
		s[g] = d * float32(int8(sc))
	}
	for half := 0; half < 2; half++ {
		ql := blk[64*half : 64*half+64]
		qh := blk[128+32*half : 128+32*half+32]
		y := q[128*half : 128*half+128]
		for l := 0; l < 32; l++ {
			h := qh[l]
			y[l] = int8(ql[l]&15|(h&3)<<4) - 32
			y[l+32] = int8(ql[l+32]&15|(h>>2&3)<<4) - 32
			y[l+64] = int8(ql[l]>>4|(h>>4&3)<<4) - 32
			y[l+96] = int8(ql[l+32]>>4|(h>>6&3)<<4) - 32
		}
	}
}

func decodeQ4_K(blk []byte, q []int8, s, mn []float32) {
	d, dmin := f16At(blk), f16At(blk[2:])
	sc := blk[4:16]
	qs := blk[16:144]
	for g := 0; g < 8; g++ {
		var a, m byte
		if g < 4 {
			a, m = sc[g]&63, sc[g+4]&63
		} else {
			a = sc[g+4]&15 | sc[g-4]>>6<<4
			m = sc[g+4]>>4 | sc[g]>>6<<4
		}
		s[g] = d * float32(a)
		mn[g] = dmin * float32(m)
	}
	for j := 0; j < 4; j++ {
		b := qs[32*j : 32*j+32]
		y := q[64*j : 64*j+64]
		for l, v := range b {
			y[l] = int8(v & 15)
			y[l+32] = int8(v >> 4)
		}
	}
}

// readBlocks reads a block-quantized matrix into its slot.
func (g *ggufReader) readBlocks(t *ggufTensor) {
	b := g.b
	s := t.slot
	f := blockFormats[t.typ]
	n := int64(s.rows) * int64(s.cols)
	blocks := n / int64(f.elems) // tensorInfo checked that rows are whole blocks
	if !b.fits(blocks, int64(f.bytes), t.name) {
		return
	}
	q := make([]int8, n)
	sc := make([]float32, n/int64(f.group))
	var mn []float32
	if f.hasMin {
		mn = make([]float32, len(sc))
	}
	gpb := f.elems / f.group // scale groups per block
	buf := make([]byte, min(blocks, 1024)*int64(f.bytes))
	for done := int64(0); done < blocks; {
		k := min(blocks-done, int64(len(buf)/f.bytes))
		chunk := buf[:k*int64(f.bytes)]
		b.full(chunk, t.name)
		if b.err != nil {
			return
		}
		for j := int64(0); j < k; j++ {
			i := done + j
			var m []float32
			if mn != nil {
				m = mn[i*int64(gpb) : (i+1)*int64(gpb)]
			}
			f.decode(chunk[j*int64(f.bytes):(j+1)*int64(f.bytes)], q[i*int64(f.elems):(i+1)*int64(f.elems)],
				sc[i*int64(gpb):(i+1)*int64(gpb)], m)
		}
		done += k
	}
	*s.mat = core.NewMatQ8(s.rows, s.cols, f.group, q, sc)
	if f.hasMin {
		*s.min = mn
	}
	if g.actGroup == 0 || f.group < g.actGroup {
		g.actGroup = f.group
	}
}

// i32Bytes views int32s as their little-endian bytes (no copy).
func i32Bytes(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
