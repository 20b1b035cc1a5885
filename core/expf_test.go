package core

import (
	"math"
	"testing"
)

// expf must be within one float32 ulp of e^x everywhere, and equal to the
// correctly rounded float32 nearly always.
func TestExpf(t *testing.T) {
	mismatch, n := 0, 0
	for x := float32(-110); x < 95; x += 0.00137 {
		n++
		got := expf(x)
		want := float32(math.Exp(float64(x)))
		if got == want {
			continue
		}
		mismatch++
		if math.IsInf(float64(want), 0) != math.IsInf(float64(got), 0) ||
			math.Abs(float64(got)-float64(want)) > float64(math.Nextafter32(want, float32(math.Inf(1)))-want) {
			t.Fatalf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	// the polynomial is ~1e-14 accurate: at most a few in a million differ
	if mismatch*100000 > n {
		t.Fatalf("%d of %d results differ from the correctly rounded value", mismatch, n)
	}
	for _, c := range []struct{ x, want float32 }{{0, 1}, {float32(math.Inf(-1)), 0}, {-200, 0}, {200, float32(math.Inf(1))}} {
		if got := expf(c.x); got != c.want {
			t.Errorf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Error("expf(NaN) is not NaN")
	}
}

func BenchmarkExpf(b *testing.B) {
	var s float32
	x := float32(-3.5)
	for b.Loop() {
		s += expf(x)
		x += 1e-6
	}
	_ = s
}
