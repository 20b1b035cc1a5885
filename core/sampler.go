package core

// Sampler picks the next token from logits exactly as llama2.c's sampler:
// argmax at temperature 0; otherwise temperature, softmax, and either plain
// multinomial or top-p (nucleus) sampling, with llama2.c's xorshift RNG so
// that seeded runs reproduce the reference's draws.
type Sampler struct {
	Temperature float32
	TopP        float32
	State       uint64 // RNG state; the seed

	probs []probIndex // (vocab) candidates for top-p
	tmp   []probIndex // (vocab) merge-sort scratch
}

type probIndex struct {
	prob  float32
	index int32
}

// NewSampler allocates a sampler for a vocabulary of n tokens.
func NewSampler(n int, temperature, topp float32, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopP: topp, State: seed,
		probs: make([]probIndex, n), tmp: make([]probIndex, n)}
}

// RandomU32 is llama2.c's xorshift* generator.
func (s *Sampler) RandomU32() uint32 {
	s.State ^= s.State >> 12
	s.State ^= s.State << 25
	s.State ^= s.State >> 27
	return uint32((s.State * 0x2545F4914F6CDD1D) >> 32)
}

// RandomF32 is a float32 in [0, 1).
func (s *Sampler) RandomF32() float32 {
	return float32(s.RandomU32()>>8) / 16777216
}

// Sample returns the next token. It modifies logits (scales and normalizes
// them in place) and allocates nothing.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temperature == 0 {
		return Argmax(logits)
	}
	for i := range logits {
		logits[i] /= s.Temperature
	}
	softmaxFast(logits)
	coin := s.RandomF32()
	if s.TopP <= 0 || s.TopP >= 1 {
		return sampleMult(logits, coin)
	}
	return s.sampleTopP(logits, coin)
}

// Argmax returns the index of the largest value (the first on ties; a NaN
// never wins unless it is first).
func Argmax(x []float32) int { return argmaxFast(x) }

// argmaxRef is Argmax's plain specification.
func argmaxRef(x []float32) int {
	best, bestV := 0, x[0]
	for i, v := range x[1:] {
		if v > bestV {
			best, bestV = i+1, v
		}
	}
	return best
}

func sampleMult(probs []float32, coin float32) int {
	var cdf float32
	for i, p := range probs {
		cdf += p
		if coin < cdf {
			return i
		}
	}
	return len(probs) - 1
}

// sampleTopP samples among the smallest set of most likely tokens whose
// probabilities exceed topp, in llama2.c's order of operations.
func (s *Sampler) sampleTopP(probs []float32, coin float32) int {
	n := len(probs)
	cutoff := (1 - s.TopP) / float32(n-1)
	c := s.probs[:0]
	for i, p := range probs {
		if p >= cutoff {
			c = append(c, probIndex{p, int32(i)})
		}
	}
	if len(c) == 0 { // only with NaN probabilities
		return Argmax(probs)
	}
	sortByProbDesc(c, s.tmp[:len(c)])
	var cum float32
	last := len(c) - 1
	for i := range c {
		cum += c[i].prob
		if cum > s.TopP {
			last = i
			break
		}
	}
	r := coin * cum
	var cdf float32
	for i := 0; i <= last; i++ {
		cdf += c[i].prob
		if r < cdf {
			return int(c[i].index)
		}
	}
	return int(c[last].index)
}

// sortByProbDesc is a stable merge sort (glibc's qsort, which the reference
// was verified with, is a stable merge sort too). tmp has len(a).
func sortByProbDesc(a, tmp []probIndex) {
	n := len(a)
	for i := 0; i+1 < n; i += 2 { // insertion-free base case: runs of 2
		if a[i+1].prob > a[i].prob {
			a[i], a[i+1] = a[i+1], a[i]
		}
	}
	src, dst := a, tmp
	for width := 2; width < n; width *= 2 {
		for lo := 0; lo < n; lo += 2 * width {
			mid := min(lo+width, n)
			hi := min(lo+2*width, n)
			i, j, k := lo, mid, lo
			for i < mid && j < hi {
				if src[j].prob > src[i].prob {
					dst[k] = src[j]
					j++
				} else {
					dst[k] = src[i]
					i++
				}
				k++
			}
			k += copy(dst[k:], src[i:mid])
			copy(dst[k:], src[j:hi])
		}
		src, dst = dst, src
	}
	if n > 0 && &src[0] != &a[0] {
		copy(a, src)
	}
}
