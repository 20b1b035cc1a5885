package models

import (
	"strings"
)

// CatalogEntry is a public model file that `mote pull NAME` knows.
//
// SHA256 is set only for files whose digest was computed here from a copy
// whose origin is documented; every other entry is unverified: its first
// download's digest is recorded locally and checked from then on (see
// cli/pull.go). No digest in this table was copied from anywhere.
type CatalogEntry struct {
	Name      string // what `mote pull` accepts
	File      string // file name in the download folder
	URL       string
	Size      int64  // bytes; 0 when unknown
	SizeExact bool   // Size is exact (else approximate)
	SHA256    string // lower-case hex, "" when unverified
	Format    Format
	Tokenizer string // the catalogue name of the tokenizer the model needs, if it carries none
	Note      string
}

// Verified reports whether the entry pins a digest.
func (e *CatalogEntry) Verified() bool { return e.SHA256 != "" }

const (
	tinyllamas = "https://huggingface.co/karpathy/tinyllamas/resolve/main/"
	ggmlModels = "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/"
	// llama2.c at the commit ../shared/models/SOURCES.md names for tokenizer.bin
	llama2cRaw = "https://raw.githubusercontent.com/karpathy/llama2.c/350e04fe35433e6d2941dce5a1f53308f87058eb/"
)

// Catalog lists the known files. Sizes marked exact for the llama2.c
// checkpoints are computed from their shapes (28 + 4 × (parameters +
// seq_len × head_size) bytes, the legacy layout with a shared classifier);
// they agree with the sizes other projects publish for stories15M and
// stories110M.
var Catalog = []CatalogEntry{
	{Name: "stories260K", File: "stories260K.bin", URL: tinyllamas + "stories260K/stories260K.bin",
		Size: 1056540, SizeExact: true, Format: FormatLlama2c, Tokenizer: "tok512",
		Note: "karpathy's 260K-parameter TinyStories model (dim 64, 5 layers, GQA 8/4), MIT"},
	{Name: "tok512", File: "tok512.bin", URL: tinyllamas + "stories260K/tok512.bin",
		Size: 6227, Note: "the 512-token tokenizer of stories260K (llama2.c format)"},
	{Name: "stories15M", File: "stories15M.bin", URL: tinyllamas + "stories15M.bin",
		Size: 60816028, SizeExact: true, Format: FormatLlama2c, Tokenizer: "tokenizer",
		Note: "karpathy's 15M TinyStories model (dim 288, 6 layers, 6 heads), MIT"},
	{Name: "stories42M", File: "stories42M.bin", URL: tinyllamas + "stories42M.bin",
		Size: 167020572, SizeExact: true, Format: FormatLlama2c, Tokenizer: "tokenizer",
		Note: "karpathy's 42M TinyStories model (dim 512, 8 layers, 8 heads), MIT"},
	{Name: "stories110M", File: "stories110M.bin", URL: tinyllamas + "stories110M.bin",
		Size: 438381596, SizeExact: true, Format: FormatLlama2c, Tokenizer: "tokenizer",
		Note: "karpathy's 110M TinyStories model (dim 768, 12 layers, 12 heads), MIT"},
	{Name: "tokenizer", File: "tokenizer.bin", URL: llama2cRaw + "tokenizer.bin",
		Size: 433869, SizeExact: true,
		// computed here: sha256 of ../shared/models/tokenizer.bin, which
		// SOURCES.md traces to this path at this commit
		SHA256: "50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361",
		Note:   "the Llama 2 32000-token vocabulary in llama2.c format (for stories15M/42M/110M), from karpathy/llama2.c"},
	{Name: "stories260K-gguf", File: "stories260K.gguf", URL: ggmlModels + "stories260K.gguf",
		Size: 1185376, Format: FormatGGUF,
		Note: "stories260K converted by llama.cpp (F32, vocabulary inside); llama.cpp's test model"},
	{Name: "stories15M-q4_0-gguf", File: "stories15M-q4_0.gguf", URL: ggmlModels + "stories15M-q4_0.gguf",
		Size: 19077344, Format: FormatGGUF,
		Note: "stories15M quantized to Q4_0 by llama.cpp (vocabulary inside)"},
	{Name: "stories42M-q4_0-gguf", File: "stories42M-q4_0.gguf", URL: ggmlModels + "stories42M-q4_0.gguf",
		Format: FormatGGUF, Note: "stories42M in Q4_0; URL seen in one public project only, size unknown"},
	{Name: "stories110M-q4_0-gguf", File: "stories110M-q4_0.gguf", URL: ggmlModels + "stories110M-q4_0.gguf",
		Format: FormatGGUF, Note: "stories110M in Q4_0; URL seen in one public project only, size unknown"},
}

// LookupCatalog finds an entry by name (case-insensitive).
func LookupCatalog(name string) (CatalogEntry, bool) {
	for _, e := range Catalog {
		if strings.EqualFold(e.Name, name) {
			return e, true
		}
	}
	return CatalogEntry{}, false
}

// CatalogNames lists the known names, in catalogue order.
func CatalogNames() []string {
	names := make([]string, len(Catalog))
	for i, e := range Catalog {
		names[i] = e.Name
	}
	return names
}
