package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMatVecF32MatchesRef(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range awkwardSizes {
		rows := 3
		w, x := randF32(r, rows*n, 1), randF32(r, n, 1)
		got, want := make([]float32, rows), make([]float32, rows)
		matVecF32(got, w, x, n, 0, rows)
		matVecF32Ref(want, w, x, n, 0, rows)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d row %d: %v != %v", n, i, got[i], want[i])
			}
		}
	}
}

// groupPairs lists (weight group, activation group) pairs valid for n.
func groupPairs(n int) [][2]int {
	var ps [][2]int
	for _, ga := range []int{1, 4, 16, 32} {
		for _, mul := range []int{1, 2, 3} {
			ps = append(ps, [2]int{ga * mul, ga})
		}
		ps = append(ps, [2]int{n, ga}, [2]int{n + 5, ga}) // whole-row weight groups
	}
	return ps
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s row %d: %v != %v", what, i, got[i], want[i])
		}
	}
}

func TestQuantKernelsMatchRef(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var cb [16]int8
	for k := range cb {
		cb[k] = int8(r.IntN(255) - 127)
	}
	for _, n := range awkwardSizes {
		for _, p := range groupPairs(n) {
			gw, ga := p[0], p[1]
			rows := 5
			gpr := (n + gw - 1) / gw
			wq, xq := randI8(r, rows*n), randI8(r, n)
			wp := make([]byte, rows*((n+1)/2))
			for i := range wp {
				wp[i] = byte(r.IntN(256))
			}
			x := randF32(r, n, 2)
			ws, xs := randF32(r, rows*gpr, 0.01), randF32(r, (n+ga-1)/ga, 0.01)
			what := fmt.Sprintf("n=%d gw=%d ga=%d", n, gw, ga)
			got, want := make([]float32, rows), make([]float32, rows)
			matVecQ8(got, wq, ws, xq, xs, n, gw, ga, 1, rows)
			matVecQ8Ref(want, wq, ws, xq, xs, n, gw, ga, 1, rows)
			if got[0] != 0 {
				t.Fatalf("row outside the range was written")
			}
			sameBits(t, "q8 "+what, got, want)
			matVecQ8F(got, wq, ws, x, n, gw, 0, rows)
			matVecQ8FRef(want, wq, ws, x, n, gw, 0, rows)
			sameBits(t, "q8f "+what, got, want)
			matVecQ4(got, wp, &cb, ws, xq, xs, n, gw, ga, 0, rows)
			matVecQ4Ref(want, wp, &cb, ws, xq, xs, n, gw, ga, 0, rows)
			sameBits(t, "q4 "+what, got, want)
			matVecQ4F(got, wp, &cb, ws, x, n, gw, 0, rows)
			matVecQ4FRef(want, wp, &cb, ws, x, n, gw, 0, rows)
			sameBits(t, "q4f "+what, got, want)
		}
	}
}

// quantizeQ8 must round-trip within half a quantization step per group.
func TestQuantizeQ8Error(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range awkwardSizes {
		for _, gs := range []int{1, 3, 16, 32} {
			x := randF32(r, n, 3)
			x[0] = 0
			q := NewQVec(n, gs)
			quantizeQ8(q.Q, q.S, x, gs)
			for j, v := range x {
				s := q.S[j/gs]
				if d := math.Abs(float64(float32(q.Q[j])*s - v)); d > float64(s)/2*1.0001 {
					t.Fatalf("n=%d gs=%d j=%d: %v -> %d*%v, error %v > half step", n, gs, j, v, q.Q[j], s, d)
				}
			}
		}
	}
	// all-zero groups get scale 0 and zero values, not NaN
	q := NewQVec(8, 4)
	quantizeQ8(q.Q, q.S, make([]float32, 8), 4)
	for _, s := range q.S {
		if s != 0 {
			t.Fatal("zero group got a nonzero scale")
		}
	}
}

func FuzzMatVecQ8(f *testing.F) {
	f.Add([]byte{1, 2, 3, 250, 7, 9, 11, 13}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, g uint8) {
		n := len(data) / 2
		if n == 0 {
			return
		}
		gs := int(g)%n + 1
		gpr := (n + gs - 1) / gs
		wq := make([]int8, n)
		xq := make([]int8, n)
		for i := 0; i < n; i++ {
			wq[i], xq[i] = int8(data[2*i]), int8(data[2*i+1])
		}
		ws := make([]float32, gpr)
		xs := make([]float32, gpr)
		for i := range ws {
			ws[i], xs[i] = float32(i+1)/7, float32(gpr-i)/3
		}
		got, want := make([]float32, 1), make([]float32, 1)
		matVecQ8(got, wq, ws, xq, xs, n, gs, gs, 0, 1)
		matVecQ8Ref(want, wq, ws, xq, xs, n, gs, gs, 0, 1)
		if math.Float32bits(got[0]) != math.Float32bits(want[0]) {
			t.Fatalf("%v != %v", got[0], want[0])
		}
	})
}

func TestSoftmaxAndRMSNorm(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	softmax(x)
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-6 || !(x[3] > x[2] && x[2] > x[1]) {
		t.Fatalf("softmax %v", x)
	}
	o := make([]float32, 4)
	rmsnorm(o, []float32{2, 2, 2, 2}, []float32{1, 1, 1, 1}, 1e-5)
	for _, v := range o {
		if math.Abs(float64(v)-1) > 1e-5 {
			t.Fatalf("rmsnorm of a constant vector: %v", o)
		}
	}
}

func BenchmarkMatVecF32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n, rows := 288, 768
	w, x, out := randF32(r, n*rows, 1), randF32(r, n, 1), make([]float32, rows)
	b.SetBytes(int64(4 * n * rows))
	b.ReportAllocs()
	for b.Loop() {
		matVecF32(out, w, x, n, 0, rows)
	}
}

// BenchmarkMatVecQ8 and BenchmarkMatVecQ4 time the plain-Go kernel ("ref",
// the specification's loop structure) and the one Forward uses ("fast":
// AVX2 on amd64, SIMD in wasm builds with -tags mote_simd) on a 768x288
// matrix in groups of 32 (the 15M model's w1).
func BenchmarkMatVecQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n, rows, gs := 288, 768, 32
	gpr := n / gs
	wq, xq := randI8(r, n*rows), randI8(r, n)
	ws, xs := randF32(r, gpr*rows, 1), randF32(r, gpr, 1)
	out := make([]float32, rows)
	for _, k := range []struct {
		name string
		f    func(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int)
	}{{"go", matVecQ8}, {"fast", matVecQ8Fast}} {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(n * rows))
			b.ReportAllocs()
			for b.Loop() {
				k.f(out, wq, ws, xq, xs, n, gs, gs, 0, rows)
			}
			b.ReportMetric(float64(n*rows)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

func BenchmarkMatVecQ4(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n, rows, gs := 288, 768, 32
	gpr := n / gs
	wp := make([]byte, rows*n/2)
	for i := range wp {
		wp[i] = byte(r.IntN(256))
	}
	xq := randI8(r, n)
	ws, xs := randF32(r, gpr*rows, 1), randF32(r, gpr, 1)
	out := make([]float32, rows)
	for _, k := range []struct {
		name string
		f    func(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int)
	}{{"go", matVecQ4}, {"fast", matVecQ4Fast}} {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(n * rows / 2))
			b.ReportAllocs()
			for b.Loop() {
				k.f(out, wp, &IQ4NL, ws, xq, xs, n, gs, gs, 0, rows)
			}
			b.ReportMetric(float64(n*rows)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// The Fast kernels (WebAssembly SIMD in wasm builds with -tags mote_simd,
// the plain-Go kernels elsewhere) must give the reference kernels' bits.
// Run under wazero by wasm/simd's tests, this is the SIMD differential test.
func TestFastKernelsMatchRef(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var cb [16]int8
	for k := range cb {
		cb[k] = int8(r.IntN(255) - 127)
	}
	for _, n := range awkwardSizes {
		for _, rows := range []int{1, 3, 4, 5, 8, 13} {
			w, x := randF32(r, rows*n, 1), randF32(r, n, 1)
			got, want := make([]float32, rows+1), make([]float32, rows+1)
			matVecF32Fast(got, w, x, n, 1, rows)
			matVecF32Ref(want, w, x, n, 1, rows)
			sameBits(t, fmt.Sprintf("f32 n=%d rows=%d", n, rows), got, want)

			// attention: keys/values at a stride wider than the head, with
			// scores large enough to exercise exp's range
			stride := n + 3
			kv := randF32(r, rows*stride, 4)
			att, attRef := make([]float32, rows), make([]float32, rows)
			out, outRef := make([]float32, n), make([]float32, n)
			attendHead(x, kv, kv[1:], stride, att, out, 2.5)
			attendHeadRef(x, kv, kv[1:], stride, attRef, outRef, 2.5)
			sameBits(t, fmt.Sprintf("attention weights n=%d t=%d", n, rows), att, attRef)
			sameBits(t, fmt.Sprintf("attention n=%d t=%d", n, rows), out, outRef)
		}
		for _, gs := range []int{1, 3, 4, 8, 16, 32, n} {
			x := randF32(r, n, 5)
			x[n/2] = 0
			if n > 8 {
				clear(x[:min(gs, n)]) // an all-zero group
			}
			q, qr := NewQVec(n, gs), NewQVec(n, gs)
			quantizeQ8Fast(q.Q, q.S, x, gs)
			quantizeQ8(qr.Q, qr.S, x, gs)
			sameBits(t, fmt.Sprintf("quantize scales n=%d gs=%d", n, gs), q.S, qr.S)
			for j := range q.Q {
				if q.Q[j] != qr.Q[j] {
					t.Fatalf("quantize n=%d gs=%d j=%d: %d != %d (x=%v)", n, gs, j, q.Q[j], qr.Q[j], x[j])
				}
			}
		}
		for _, p := range groupPairs(n) {
			gw, ga := p[0], p[1]
			rows := 6
			gpr := (n + gw - 1) / gw
			wq, xq := randI8(r, rows*n), randI8(r, n)
			wp := make([]byte, rows*((n+1)/2))
			for i := range wp {
				wp[i] = byte(r.IntN(256))
			}
			ws, xs := randF32(r, rows*gpr, 0.01), randF32(r, (n+ga-1)/ga, 0.01)
			what := fmt.Sprintf("n=%d gw=%d ga=%d", n, gw, ga)
			got, want := make([]float32, rows), make([]float32, rows)
			matVecQ8Fast(got, wq, ws, xq, xs, n, gw, ga, 2, rows)
			matVecQ8Ref(want, wq, ws, xq, xs, n, gw, ga, 2, rows)
			sameBits(t, "fast q8 "+what, got, want)
			matVecQ4Fast(got, wp, &cb, ws, xq, xs, n, gw, ga, 1, rows)
			matVecQ4Ref(want, wp, &cb, ws, xq, xs, n, gw, ga, 1, rows)
			sameBits(t, "fast q4 "+what, got, want)
		}
	}
}

func FuzzFastMatVecQ4(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0xff, 0x00, 7, 250, 3, 9, 100}, uint8(5), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, g, a uint8) {
		n := len(data)
		if n < 2 {
			return
		}
		ga := int(a)%n + 1
		gw := ga * (int(g)%3 + 1)
		gpr := (n + gw - 1) / gw
		var cb [16]int8
		for k := range cb {
			cb[k] = int8(data[k%n])
		}
		wp := data[:(n+1)/2]
		xq := make([]int8, n)
		for i := range xq {
			xq[i] = int8(data[n-1-i])
		}
		ws := make([]float32, gpr)
		for i := range ws {
			ws[i] = float32(i+1) / 9
		}
		xs := make([]float32, (n+ga-1)/ga)
		for i := range xs {
			xs[i] = float32(len(xs)-i) / 5
		}
		got, want := make([]float32, 1), make([]float32, 1)
		matVecQ4Fast(got, wp, &cb, ws, xq, xs, n, gw, ga, 0, 1)
		matVecQ4Ref(want, wp, &cb, ws, xq, xs, n, gw, ga, 0, 1)
		sameBits(t, "q4", got, want)
		q8 := make([]int8, n)
		for i := range q8 {
			q8[i] = int8(data[i])
		}
		matVecQ8Fast(got, q8, ws, xq, xs, n, gw, ga, 0, 1)
		matVecQ8Ref(want, q8, ws, xq, xs, n, gw, ga, 0, 1)
		sameBits(t, "q8", got, want)
	})
}

// The element-wise Fast kernels (SwiGLU, softmax, argmax) must give the
// plain ones' bits and indices, including NaNs, infinities, signed zeros
// and ties.
func TestFastElementwiseMatchRef(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, n := range awkwardSizes {
		for trial := 0; trial < 8; trial++ {
			// scale 40 reaches exp's range ends; trial 0 adds special values
			h, g := randF32(r, n, 40), randF32(r, n, 3)
			if trial == 0 && n > 6 {
				h[1], h[2], h[3], h[4], h[5] = nan, inf, -inf, 0, float32(math.Copysign(0, -1))
			}
			got, want := slices.Clone(h), slices.Clone(h)
			swiglu(got, g)
			swigluRef(want, g)
			sameBitsOrNaN(t, fmt.Sprintf("swiglu n=%d trial %d", n, trial), got, want)

			x := randF32(r, n, 30)
			switch trial {
			case 1: // ties: the maximum repeated at spots spread over the lanes
				for _, j := range []int{n / 3, n / 2, n - 1, n / 5} {
					x[j] = 100
				}
			case 2: // NaNs, and a NaN first
				for j := range x {
					if j%3 == 0 {
						x[j] = nan
					}
				}
			case 3: // NaNs, but not first
				for j := 1; j < n; j += 2 {
					x[j] = nan
				}
			case 4: // signed zeros as the maximum
				for j := range x {
					x[j] = -1 - x[j]*x[j]
				}
				x[n-1] = 0
				x[n/2] = float32(math.Copysign(0, -1))
			case 5:
				x[n/2] = inf
				x[n-1] = inf
			}
			if a, b := argmaxFast(x), argmaxRef(x); a != b {
				t.Fatalf("argmax n=%d trial %d: %d, want %d", n, trial, a, b)
			}
			if trial < 2 {
				sx, sr := slices.Clone(x), slices.Clone(x)
				softmaxFast(sx)
				softmax(sr)
				sameBits(t, fmt.Sprintf("softmax n=%d trial %d", n, trial), sx, sr)
			}
		}
	}
}

// sameBitsOrNaN is sameBits where a NaN matches any NaN: WebAssembly leaves
// a NaN result's sign and payload to the engine (scalar and SIMD code of
// one engine differ), so only NaN-ness is specified.
func sameBitsOrNaN(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range got {
		if got[i] != got[i] && want[i] != want[i] {
			continue
		}
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s row %d: %v != %v", what, i, got[i], want[i])
		}
	}
}

// BenchmarkElementwise times the plain and Fast element-wise kernels on a
// decode step's sizes: SwiGLU on the 15M FFN (768), softmax and argmax on a
// 32,000-token vocabulary (the sampler's work per token).
func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	h, g, logits := randF32(r, 768, 4), randF32(r, 768, 1), randF32(r, 32000, 8)
	work := make([]float32, len(logits))
	for _, k := range []struct {
		name string
		n    int
		f    func()
	}{
		{"swiglu768/go", 768, func() { swigluRef(work[:768], g) }},
		{"swiglu768/fast", 768, func() { swiglu(work[:768], g) }},
		{"softmax32000/go", 32000, func() { copy(work, logits); softmax(work) }},
		{"softmax32000/fast", 32000, func() { copy(work, logits); softmaxFast(work) }},
		{"argmax32000/go", 32000, func() { argmaxRef(logits) }},
		{"argmax32000/fast", 32000, func() { argmaxFast(logits) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			copy(work, h)
			for b.Loop() {
				k.f()
			}
			b.ReportMetric(float64(k.n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}
