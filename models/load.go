package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"mote/core"
)

// Format names a model file format.
type Format string

const (
	FormatLlama2c Format = "llama2c"      // llama2.c legacy checkpoint (.bin)
	FormatAK42    Format = "llama2c-ak42" // llama2.c versioned checkpoint
	FormatGGUF    Format = "gguf"
	FormatMote    Format = "mote" // mote's container, FORMAT.md
)

// Info describes a file that was read.
type Info struct {
	Format    Format
	Version   int
	FileBytes int64  // size of the file as stored
	Checksums string // "verified", or "none" for formats without checksums
	Compress  string // "none", or the container's compression mode
}

// Open reads a model file of any supported format. tokenizer, when not
// empty, is a llama2.c tokenizer .bin that replaces the model's own
// tokenizer; formats that carry none need it.
func Open(path, tokenizer string) (*core.Model, *Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s: is a directory, not a model file", path)
	}
	m, info, err := Read(path, f, st.Size())
	if err != nil {
		return nil, nil, err
	}
	if tokenizer != "" {
		if err := AttachTokenizerFile(m, tokenizer); err != nil {
			return nil, nil, err
		}
	}
	return m, info, nil
}

// AttachTokenizerFile reads a llama2.c tokenizer .bin sized for the model
// and makes it the model's tokenizer.
func AttachTokenizerFile(m *core.Model, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	t, err := ReadTokenizer(path, bufio.NewReaderSize(f, 1<<16), st.Size(), m.Config.VocabSize)
	if err != nil {
		return err
	}
	m.Tokenizer = t
	return nil
}

// ReadBytes reads a model held in memory (the browser and worker builds).
func ReadBytes(name string, data []byte) (*core.Model, *Info, error) {
	return Read(name, bytes.NewReader(data), int64(len(data)))
}

// Read reads a model of any supported format from r. size is the total
// number of bytes r will yield, or -1 when unknown (the llama2.c legacy
// format, which has no magic, needs it).
func Read(name string, r io.Reader, size int64) (*core.Model, *Info, error) {
	// a 64 KiB read buffer, smaller for small inputs (it dominated the cost
	// of reading tiny files, e.g. under the fuzzer)
	bufSize := 1 << 16
	if size >= 0 && size < int64(bufSize) {
		bufSize = max(16, int(size))
	}
	br := bufio.NewReaderSize(r, bufSize)
	head, err := br.Peek(8)
	if len(head) < 4 {
		if size == 0 || err == io.EOF {
			return nil, nil, fileErr(name, 0, ErrTruncated, "file has %d bytes, too short for any model format", len(head))
		}
		return nil, nil, fileErr(name, 0, ErrCorrupt, "reading header: %v", err)
	}
	b := newBinReader(name, br, size)
	info := &Info{FileBytes: size, Checksums: "none", Compress: "none"}
	var m *core.Model
	switch {
	case string(head[:4]) == "GGUF":
		info.Format = FormatGGUF
		m, err = readGGUF(b, info)
	case string(head[:4]) == moteMagic:
		info.Format = FormatMote
		m, err = readContainer(b, info)
	case binary.LittleEndian.Uint32(head) == ak42Magic:
		info.Format = FormatAK42
		if len(head) >= 8 {
			info.Version = int(binary.LittleEndian.Uint32(head[4:]))
		}
		m, err = readAK42(b)
	default:
		info.Format = FormatLlama2c
		m, err = readLegacy(b)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fileErr(name, b.off, ErrCorrupt, "%v", err)
	}
	return m, info, nil
}
