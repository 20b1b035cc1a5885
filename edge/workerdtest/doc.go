// Package workerdtest tests mote's Worker (dist/edge, built by
// ./build.sh) in the real workerd from npm, on 127.0.0.1 only: reference
// texts streamed and not, the SIMD and plain builds, one model load across
// many requests, bad inputs, 32 overlapping streams, static-asset model
// loading, CORS and the bearer key, recovery after the Go program dies; its
// benchmarks measure cold start, time to first token, tok/s and requests/s.
// It has no non-test code.
package workerdtest
