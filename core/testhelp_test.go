package core

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// shared is the folder of ground-truth files beside the repository.
var shared = filepath.Join("..", "..", "shared")

func readShared(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{shared}, parts...)...))
	if err != nil {
		t.Fatalf("ground truth missing: %v", err)
	}
	return b
}

// awkwardSizes are lengths that catch unrolling and tail bugs (ggml's habit).
var awkwardSizes = []int{1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 172, 255, 256, 257, 511, 1023}

func randF32(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (r.Float32()*2 - 1) * scale
	}
	return v
}

func randI8(r *rand.Rand, n int) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(r.IntN(255) - 127)
	}
	return v
}
