package core

import (
	"fmt"
	"math"
)

// Classification over sentence embeddings: a linear softmax head trained on
// labeled embeddings, and zero-shot scoring against label descriptions.

// Head is a linear softmax classifier: P(label | e) = softmax(W e + B).
type Head struct {
	Labels []string
	Dim    int       // input width: the encoder's embedding width
	W      []float32 // (labels, dim)
	B      []float32 // (labels)
}

// Check verifies the shapes.
func (h *Head) Check() error {
	k := len(h.Labels)
	switch {
	case k < 2 || k > MaxLabels:
		return fmt.Errorf("%w: a head with %d labels (2..%d)", ErrBadConfig, k, MaxLabels)
	case h.Dim <= 0 || h.Dim > MaxDim:
		return fmt.Errorf("%w: head input width %d", ErrBadConfig, h.Dim)
	case len(h.W) != k*h.Dim || len(h.B) != k:
		return fmt.Errorf("%w: head of %d labels x %d holds %d weights and %d biases", ErrBadConfig, k, h.Dim, len(h.W), len(h.B))
	}
	return nil
}

// MaxLabels bounds a head's labels.
const MaxLabels = 1 << 12

// Probs writes the label probabilities of embedding e (dim) to out (labels).
func (h *Head) Probs(e, out []float32) {
	LinearScores(h.W, h.B, h.Dim, nil, e, out)
	SoftmaxT(out, 1)
}

// LinearScores writes out[k] = W[k]·x + b[k] for a dense x (idx nil) or a
// sparse one (x[i] at column idx[i]), summing in float64.
func LinearScores(w, b []float32, dim int, idx []int32, x, out []float32) {
	for k := range out {
		row := w[k*dim : (k+1)*dim]
		s := float64(b[k])
		if idx == nil {
			for j, v := range x[:dim] {
				s += float64(float64(row[j]) * float64(v))
			}
		} else {
			for j, c := range idx {
				s += float64(float64(row[c]) * float64(x[j]))
			}
		}
		out[k] = float32(s)
	}
}

// SoftmaxT turns scores into probabilities at temperature t, in float64.
func SoftmaxT(x []float32, t float32) {
	if len(x) == 0 {
		return
	}
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v)/float64(t))
	}
	var sum float64
	e := make([]float64, len(x))
	for i, v := range x {
		e[i] = math.Exp(float64(v)/float64(t) - mx)
		sum += e[i]
	}
	for i := range x {
		x[i] = float32(e[i] / sum)
	}
}

// ZeroShot scores an embedding against label embeddings: out[k] is the
// softmax, at temperature t, of the cosine similarities.
func ZeroShot(e []float32, labels [][]float32, t float32, out []float32) {
	for k, l := range labels {
		out[k] = float32(Cosine(e, l))
	}
	SoftmaxT(out[:len(labels)], t)
}

// Example is one labeled training input: dense (Idx nil, Val has dim
// values) or sparse (Val[i] at column Idx[i]).
type Example struct {
	Idx   []int32
	Val   []float32
	Label int
}

// TrainOptions control TrainLinear.
type TrainOptions struct {
	Epochs int     // full-batch steps (default 300)
	LR     float64 // Adam step size (default 0.05)
	L2     float64 // weight decay on W, per example (default 1e-4)
}

// TrainLinear fits a linear softmax classifier (multinomial logistic
// regression) to the examples by full-batch Adam on the mean cross-entropy
// plus L2 on the weights. It is deterministic: no sampling, sums in order.
// It returns W (classes, dim) and B (classes).
func TrainLinear(dim, classes int, ex []Example, o TrainOptions) (w, b []float32) {
	if o.Epochs <= 0 {
		o.Epochs = 300
	}
	if o.LR <= 0 {
		o.LR = 0.05
	}
	if o.L2 < 0 {
		o.L2 = 0
	} else if o.L2 == 0 {
		o.L2 = 1e-4
	}
	n := len(ex)
	nw := classes * dim
	params := make([]float64, nw+classes) // W then B
	grad := make([]float64, len(params))
	m1 := make([]float64, len(params))
	m2 := make([]float64, len(params))
	p := make([]float64, classes)
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	for step := 1; step <= o.Epochs; step++ {
		clear(grad)
		for _, e := range ex {
			// scores and probabilities
			mx := math.Inf(-1)
			for k := range p {
				row := params[k*dim : (k+1)*dim]
				s := params[nw+k]
				if e.Idx == nil {
					for j, v := range e.Val[:dim] {
						s += row[j] * float64(v)
					}
				} else {
					for j, c := range e.Idx {
						s += row[c] * float64(e.Val[j])
					}
				}
				p[k] = s
				mx = max(mx, s)
			}
			var sum float64
			for k := range p {
				p[k] = math.Exp(p[k] - mx)
				sum += p[k]
			}
			for k := range p {
				g := p[k] / sum
				if k == e.Label {
					g--
				}
				g /= float64(n)
				grow := grad[k*dim : (k+1)*dim]
				if e.Idx == nil {
					for j, v := range e.Val[:dim] {
						grow[j] += g * float64(v)
					}
				} else {
					for j, c := range e.Idx {
						grow[c] += g * float64(e.Val[j])
					}
				}
				grad[nw+k] += g
			}
		}
		for i := 0; i < nw; i++ {
			grad[i] += o.L2 * params[i]
		}
		c1, c2 := 1-math.Pow(beta1, float64(step)), 1-math.Pow(beta2, float64(step))
		for i, g := range grad {
			m1[i] = beta1*m1[i] + (1-beta1)*g
			m2[i] = beta2*m2[i] + (1-beta2)*g*g
			params[i] -= o.LR * (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + eps)
		}
	}
	w, b = make([]float32, nw), make([]float32, classes)
	for i := range w {
		w[i] = float32(params[i])
	}
	for k := range b {
		b[k] = float32(params[nw+k])
	}
	return w, b
}
