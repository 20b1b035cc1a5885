//go:build !wasm

package models

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogEntries(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Catalog {
		key := strings.ToLower(e.Name)
		if seen[key] || seen["file:"+e.File] {
			t.Errorf("duplicate name or file: %s %s", e.Name, e.File)
		}
		seen[key], seen["file:"+e.File] = true, true
		u, err := url.Parse(e.URL)
		if err != nil || u.Scheme != "https" || filepath.Base(u.Path) != e.File {
			t.Errorf("%s: URL %q does not end in its file %q", e.Name, e.URL, e.File)
		}
		if e.SHA256 != "" && (len(e.SHA256) != 64 || strings.ToLower(e.SHA256) != e.SHA256) {
			t.Errorf("%s: sha256 %q is not 64 lower-case hex digits", e.Name, e.SHA256)
		}
		if e.Tokenizer != "" {
			if _, ok := LookupCatalog(e.Tokenizer); !ok {
				t.Errorf("%s needs tokenizer %q, which is not in the catalogue", e.Name, e.Tokenizer)
			}
		}
	}
}

// The llama2.c checkpoint sizes follow from their shapes.
func TestCatalogLlama2cSizes(t *testing.T) {
	for name, shape := range map[string][7]int64{ // dim, hidden, layers, heads, kv heads, vocab, seq
		"stories260K": {64, 172, 5, 8, 4, 512, 512},
		"stories15M":  {288, 768, 6, 6, 6, 32000, 256},
		"stories42M":  {512, 1376, 8, 8, 8, 32000, 1024},
		"stories110M": {768, 2048, 12, 12, 12, 32000, 1024},
	} {
		d, h, l, nh, nkv, v, s := shape[0], shape[1], shape[2], shape[3], shape[4], shape[5], shape[6]
		kv := d * nkv / nh
		params := v*d + l*(2*d+2*d*d+2*d*kv+3*d*h) + d
		want := 28 + 4*(params+s*(d/nh))
		e, ok := LookupCatalog(name)
		if !ok || e.Size != want || !e.SizeExact {
			t.Errorf("%s: size %d (exact %v), shape says %d", name, e.Size, e.SizeExact, want)
		}
	}
	// and the formula is right for the one checkpoint at hand
	st, err := os.Stat(filepath.Join("..", "..", "shared", "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := LookupCatalog("stories260K"); st.Size() != e.Size {
		t.Errorf("stories260K.bin has %d bytes, the catalogue says %d", st.Size(), e.Size)
	}
}

// The only pinned digest is that of a file at hand.
func TestCatalogDigestsComputedHere(t *testing.T) {
	local := map[string]string{"tokenizer": "tokenizer.bin"}
	for _, e := range Catalog {
		if e.SHA256 == "" {
			continue
		}
		f, ok := local[e.Name]
		if !ok {
			t.Errorf("%s pins a sha256 with no local copy to compute it from", e.Name)
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "models", f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != e.SHA256 || int64(len(b)) != e.Size {
			t.Errorf("%s: sha256/size differ from %s", e.Name, f)
		}
	}
}

func TestCatalogLookup(t *testing.T) {
	if e, ok := LookupCatalog("STORIES15m"); !ok || e.File != "stories15M.bin" {
		t.Fatalf("case-insensitive lookup: %+v %v", e, ok)
	}
	if _, ok := LookupCatalog("nope"); ok {
		t.Fatal("found an unknown name")
	}
	e, err := EntryForURL("https://example.com/a/b/model.gguf?download=1")
	if err != nil || e.File != "model.gguf" || e.SHA256 != "" {
		t.Fatalf("%+v %v", e, err)
	}
	if e, err := EntryForURL(Catalog[2].URL); err != nil || e.Name != Catalog[2].Name {
		t.Fatalf("a catalogue URL maps to its entry: %+v %v", e, err)
	}
	for _, bad := range []string{"ftp://x/y.bin", "https://example.com/", "https:///x.bin", "not a url", "https://example.com/.."} {
		if _, err := EntryForURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
