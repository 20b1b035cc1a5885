// Package core is mote's tight loop: the llama-architecture forward pass over
// fp32 and 8-bit group-quantized weights, the kernels under it, the
// SentencePiece-style BPE tokenizer and the sampler.
//
// It imports only the standard library, starts no goroutines, does no I/O and
// allocates nothing per generated token once a State and a Sampler exist.
// Kernels take row ranges (r0, r1) so that a native caller can split a large
// matrix-vector product across cores through the Parallel hook; wasm builds
// leave it nil and run single-threaded.
//
// The fp32 path computes exactly what llama2.c's run.c computes, in the same
// order, so that its output is byte-identical to the reference: every float32
// product is converted explicitly (float32(a*b)) so that no compiler may fuse
// it into an FMA, and sums run left to right in float32.
//
// Why not cgo or assembly: core must compile unchanged for GOOS=js and
// GOOS=wasip1, where neither exists. Fast wasm kernels live in wasm/ and are
// checked against the plain-Go kernels here, which are the specification.
package core
