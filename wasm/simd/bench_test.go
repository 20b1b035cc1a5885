package simd

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

var tokPerSec = regexp.MustCompile(`achieved tok/s: ([0-9.]+)`)

// BenchmarkDecodeWasip1 runs `mote run` on stories260K (greedy, 256 steps)
// under wazero, plain Go wasm and with the SIMD kernels, and reports the
// tok/s the command itself measures (load and compile excluded).
func BenchmarkDecodeWasip1(b *testing.B) {
	models, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "models"))
	for _, tc := range []struct{ name, tags string }{{"plain", ""}, {"simd", "mote_simd"}} {
		b.Run(tc.name, func(b *testing.B) {
			args := []string{"build"}
			if tc.tags != "" {
				args = append(args, "-tags", tc.tags)
			}
			guest := buildWasip1B(b, b.TempDir(), "mote.wasm", append(args, "./cmd/mote")...)
			var sum float64
			for i := 0; i < b.N; i++ {
				_, errs, code := runB(b, guest, models, "run", "/stories260K.bin", "-z", "/tok512.bin", "-t", "0", "-n", "256", "-i", "Once upon a time")
				m := tokPerSec.FindStringSubmatch(errs)
				if code != 0 || m == nil {
					b.Fatalf("exit %d: %s", code, errs)
				}
				v, _ := strconv.ParseFloat(m[1], 64)
				sum += v
			}
			b.ReportMetric(sum/float64(b.N), "tok/s")
		})
	}
}
