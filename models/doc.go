// Package models reads and writes model files: llama2.c checkpoints (legacy
// and versioned "ak42" v1/v2), llama2.c tokenizers, GGUF (v2/v3, llama) and
// mote's own container (see FORMAT.md). It imports core and the standard
// library, plus klauspost/compress for zstd.
//
// Model files are untrusted input. Every count and length read from a file is
// bounded before anything is allocated for it, sizes are checked against the
// file's size where it is known, and every failure is an *Error that wraps one
// of the sentinel errors below and names the file, the offset and what was
// wrong. Readers never panic on a file.
//
// Weights are read straight into their final slices (little-endian hosts
// only: amd64, arm64, wasm): one copy from the file, none afterwards.
package models
