// Package testmodels finds the model files tests use that come from a Go
// module rather than ../shared: all-MiniLM-L6-v2 (the sentence encoder of
// docs/EMBED.md) in github.com/mutablelogic/go-llama@v0.0.11. Only tests
// import it.
package testmodels

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

const (
	// Module holds the encoder in its testdata folder.
	Module = "github.com/mutablelogic/go-llama@v0.0.11"
	// MiniLMFile is the encoder's path inside Module.
	MiniLMFile = "testdata/all-MiniLM-L6-v2-Q4_K_M.gguf"
	// MiniLMSHA256 is its checksum (build.sh checks the same).
	MiniLMSHA256 = "2ec4cee28a27a9c973d5f5230930d6ef6e52694bd2bc71be26a9bef5b1d755e6"
)

// MiniLM returns the path of the encoder in the Go module cache (read-only
// there), fetched by `go mod download` on first use (in a throwaway folder,
// so no go.mod is touched; offline once cached) and checked against its
// sha256. Computed once per test binary.
var MiniLM = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mote-minilm")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "mod", "download", "-json", Module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var r struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil || r.Error != "" || r.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s %s", Module, err, r.Error, out)
	}
	path := filepath.Join(r.Dir, MiniLMFile)
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != MiniLMSHA256 {
		return "", fmt.Errorf("%s: sha256 %s, want %s", path, sum, MiniLMSHA256)
	}
	return path, nil
})

// MiniLMBytes returns the encoder file's contents (see MiniLM), read once
// per test binary.
var MiniLMBytes = sync.OnceValues(func() ([]byte, error) {
	path, err := MiniLM()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})
