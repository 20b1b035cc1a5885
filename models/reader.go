package models

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"unsafe"
)

// binReader reads little-endian values from a stream, tracking the offset and
// turning short reads into ErrTruncated errors that name the file.
type binReader struct {
	r    io.Reader
	name string
	off  int64
	size int64 // total bytes, or -1 when unknown
	err  error // first error; later reads are no-ops
	buf  [8]byte
}

func newBinReader(name string, r io.Reader, size int64) *binReader {
	return &binReader{r: r, name: name, size: size}
}

// fail records the first error.
func (b *binReader) fail(sentinel error, format string, a ...any) {
	if b.err == nil {
		b.err = fileErr(b.name, b.off, sentinel, format, a...)
	}
}

// remaining is the number of bytes left, or -1 if unknown.
func (b *binReader) remaining() int64 {
	if b.size < 0 {
		return -1
	}
	return b.size - b.off
}

// full reads exactly len(p) bytes.
func (b *binReader) full(p []byte, what string) {
	if b.err != nil {
		return
	}
	if rem := b.remaining(); rem >= 0 && int64(len(p)) > rem {
		b.fail(ErrTruncated, "%s needs %d bytes, %d left", what, len(p), rem)
		return
	}
	n, err := io.ReadFull(b.r, p)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			b.fail(ErrTruncated, "%s needs %d bytes, got %d", what, len(p), n)
		} else {
			b.fail(ErrCorrupt, "reading %s: %v", what, err)
		}
	}
	b.off += int64(n)
}

// skip discards n bytes.
func (b *binReader) skip(n int64, what string) {
	if b.err != nil {
		return
	}
	if rem := b.remaining(); rem >= 0 && n > rem {
		b.fail(ErrTruncated, "%s needs %d bytes, %d left", what, n, rem)
		return
	}
	m, err := io.CopyN(io.Discard, b.r, n)
	b.off += m
	if err != nil {
		b.fail(ErrTruncated, "%s needs %d bytes, got %d", what, n, m)
	}
}

func (b *binReader) u8(what string) uint8 {
	b.full(b.buf[:1], what)
	if b.err != nil {
		return 0
	}
	return b.buf[0]
}

func (b *binReader) u16(what string) uint16 {
	b.full(b.buf[:2], what)
	if b.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b.buf[:2])
}

func (b *binReader) u32(what string) uint32 {
	b.full(b.buf[:4], what)
	if b.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b.buf[:4])
}

func (b *binReader) i32(what string) int32 { return int32(b.u32(what)) }

func (b *binReader) u64(what string) uint64 {
	b.full(b.buf[:8], what)
	if b.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b.buf[:8])
}

func (b *binReader) f32(what string) float32 { return math.Float32frombits(b.u32(what)) }

// f32s reads n float32 values into a new slice, checking the size first.
func (b *binReader) f32s(n int64, what string) []float32 {
	if !b.fits(n, 4, what) {
		return nil
	}
	v := make([]float32, n)
	b.full(f32Bytes(v), what)
	return v
}

// i8s reads n int8 values into a new slice, checking the size first.
func (b *binReader) i8s(n int64, what string) []int8 {
	if !b.fits(n, 1, what) {
		return nil
	}
	v := make([]int8, n)
	b.full(i8Bytes(v), what)
	return v
}

// fits checks, before allocating, that n elements of size bytes can be in
// the rest of the file (when its size is known) and below maxAlloc.
func (b *binReader) fits(n, size int64, what string) bool {
	if b.err != nil {
		return false
	}
	if n < 0 || n > maxAlloc/size {
		b.fail(ErrLimit, "%s: %d elements exceed the %d-byte allocation limit", what, n, int64(maxAlloc))
		return false
	}
	if rem := b.remaining(); rem >= 0 && n*size > rem {
		b.fail(ErrTruncated, "%s needs %d bytes, %d left", what, n*size, rem)
		return false
	}
	return true
}

// maxAlloc bounds any single allocation made for data read from a file. It
// keeps a lying header from asking for more than a 4 GB address space holds.
const maxAlloc = 3 << 30

// f32Bytes views float32s as their little-endian bytes (no copy).
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// i8Bytes views int8s as bytes (no copy).
func i8Bytes(v []int8) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v))
}
