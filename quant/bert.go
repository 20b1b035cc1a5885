package quant

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"mote/core"
	"mote/models"
)

// Encoders (core.Bert): quantization with mote's types, a lossless repack
// of GGUF's blocks into the container's, and evaluation by cosine
// similarity to the unquantized (dequantized fp32) model, which is what
// embedding users compare (docs/EMBED.md has the table).

// EncoderPolicy says how an encoder's matrices are quantized: Default for
// the layer matrices, Emb for the token embedding (30522 x 384 in MiniLM:
// about half the weights), rules by name ("ffn_down", "attn_v.3") over the
// default. A nil spec keeps the tensor fp32. Position and token-type
// embeddings, biases and norms stay fp32.
type EncoderPolicy struct {
	Default  *Spec
	Emb      *Spec
	Rules    map[string]*Spec
	ActGroup int // int8 activation groups of the result (0: float activations)
}

// SpecFor is the spec of matrix name ("attn_q", ...) in layer l.
func (p *EncoderPolicy) SpecFor(name string, l int) *Spec {
	if s, ok := p.Rules[name+"."+strconv.Itoa(l)]; ok {
		return s
	}
	if s, ok := p.Rules[name]; ok {
		return s
	}
	return p.Default
}

// DequantizeEncoder returns a copy of m whose matrices and embeddings are
// fp32 holding exactly the weights m's stand for (minimums folded in), with
// float activations: the unquantized reference. Vectors are shared.
func DequantizeEncoder(m *core.Bert) *core.Bert {
	out := *m
	out.ActGroup = 0
	w := &out.Weights
	w.Layers = append([]core.BertLayer(nil), m.Weights.Layers...)
	f32 := func(mt *core.Mat) core.Mat { return core.NewMatF32(mt.Rows, mt.Cols, dequantF32(mt)) }
	w.TokenEmbedding, w.PosEmbedding, w.TypeEmbedding = f32(&m.Weights.TokenEmbedding), f32(&m.Weights.PosEmbedding), f32(&m.Weights.TypeEmbedding)
	for _, nl := range out.Mats() {
		l := nl.Lin
		*l = core.Linear{W: core.NewMatF32(l.W.Rows, l.W.Cols, DequantLinear(l)), B: l.B}
	}
	return &out
}

// DequantLinear returns the fp32 weights a Linear stands for (rows x cols,
// minimums folded in).
func DequantLinear(l *core.Linear) []float32 {
	f := dequantF32(&l.W)
	if l.Min != nil {
		gpr := l.W.GroupsPerRow()
		for i := 0; i < l.W.Rows; i++ {
			for j := 0; j < l.W.Cols; j++ {
				f[i*l.W.Cols+j] = float32(float64(f[i*l.W.Cols+j]) - float64(l.Min[i*gpr+j/l.W.GroupSize]))
			}
		}
	}
	return f
}

// QuantizedEncoder is a quantized encoder: the model the kernels run, and
// the stored form of each quantized matrix by container name (token_embd,
// blk.3.attn_q, ...), for models.WriteOptions.Packed.
type QuantizedEncoder struct {
	Model *core.Bert
	Mats  map[string]*models.PackedMat
}

// QuantizeEncoder quantizes m's matrices (dequantized first) as the policy
// says, unweighted (no calibration), on all cores.
func QuantizeEncoder(m *core.Bert, p *EncoderPolicy) (*QuantizedEncoder, error) {
	f := DequantizeEncoder(m)
	q := *f
	q.ActGroup = p.ActGroup
	q.Weights.Layers = append([]core.BertLayer(nil), f.Weights.Layers...)
	type job struct {
		name string
		dst  *core.Mat
		spec *Spec
		res  *models.PackedMat
		err  error
	}
	jobs := []*job{{name: "token_embd", dst: &q.Weights.TokenEmbedding, spec: p.Emb}}
	for _, nl := range q.Mats() {
		jobs = append(jobs, &job{name: fmt.Sprintf("blk.%d.%s", nl.Layer, nl.Name), dst: &nl.Lin.W, spec: p.SpecFor(nl.Name, nl.Layer)})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		if j.spec == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j.res, j.err = QuantizeMat(j.dst.F, j.dst.Rows, j.dst.Cols, nil, *j.spec)
		}()
	}
	wg.Wait()
	out := &QuantizedEncoder{Model: &q, Mats: map[string]*models.PackedMat{}}
	for _, j := range jobs {
		if j.err != nil {
			return nil, fmt.Errorf("%s: %w", j.name, j.err)
		}
		if j.res != nil {
			*j.dst = j.res.Core()
			out.Mats[j.name] = j.res
		}
	}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuant, err)
	}
	return out, nil
}

// PackEncoder finds, for every Q8 matrix of m (GGUF's Q8_0, Q5_0, Q6_K and
// Q4_K blocks as models reads them), the container's smallest exact form:
// k-bit indices into a uniform codebook when the values are -2^(k-1) ..
// 2^(k-1)-1 (Q5_0: 5 bits, Q6_K: 6), or into a stored one of consecutive
// values (Q4_K's 0..15), with f16 scales when every scale is a half (Q8_0's
// and Q5_0's are). It returns the model as a reader of that container will
// hold it (up to 4 bits a core.Q4 whose codebook gives the same integers,
// so the same products to the bit) and the packed forms, for
// models.WriteOptions.Packed: the container holds m exactly, in about the
// GGUF's size. Matrices that are not Q8 stay as they are.
func PackEncoder(m *core.Bert) (*core.Bert, map[string]*models.PackedMat) {
	out := *m
	out.Weights.Layers = append([]core.BertLayer(nil), m.Weights.Layers...)
	packs := map[string]*models.PackedMat{}
	add := func(name string, mt *core.Mat) {
		if p := packExact(mt); p != nil {
			packs[name] = p
			*mt = p.Core()
		}
	}
	add("token_embd", &out.Weights.TokenEmbedding)
	for _, nl := range out.Mats() {
		add(fmt.Sprintf("blk.%d.%s", nl.Layer, nl.Name), &nl.Lin.W)
	}
	return &out, packs
}

func packExact(mt *core.Mat) *models.PackedMat {
	if mt.Type != core.Q8 {
		return nil
	}
	lo, hi := int(mt.Q[0]), int(mt.Q[0])
	for _, v := range mt.Q {
		lo, hi = min(lo, int(v)), max(hi, int(v))
	}
	bits := 2
	for bits < 8 && !(lo >= -(1<<(bits-1)) && hi < 1<<(bits-1)) && hi-lo >= 1<<bits {
		bits++
	}
	p := &models.PackedMat{Rows: mt.Rows, Cols: mt.Cols, Bits: bits, GroupSize: mt.GroupSize,
		S: append([]float32(nil), mt.S...), Idx: make([]uint8, len(mt.Q))}
	if lo >= -(1<<(bits-1)) && hi < 1<<(bits-1) {
		p.Uniform, p.Codebook = true, models.UniformCodebook(bits)
		lo = -(1 << (bits - 1))
	} else {
		p.Codebook = make([]int8, 1<<bits)
		for i := range p.Codebook {
			p.Codebook[i] = int8(min(lo+i, 127))
		}
	}
	for i, v := range mt.Q {
		p.Idx[i] = uint8(int(v) - lo)
	}
	p.Scale = models.ScaleF16
	p.Codes = make([]uint16, len(p.S))
	for i, s := range p.S {
		h := models.HalfBits(s)
		if math.Float32bits(models.HalfFloat(h)) != math.Float32bits(s) {
			p.Scale, p.Codes = models.ScaleF32, nil
			break
		}
		p.Codes[i] = h
	}
	if p.Check() != nil {
		return nil
	}
	return p
}

// EncoderFidelity is how close an encoder's embeddings are to a reference's.
type EncoderFidelity struct {
	Texts      int
	Tokens     int     // all texts' tokens, [CLS] and [SEP] included
	MeanCosine float64 // mean over texts of the cosine between the two embeddings
	MinCosine  float64
	P05Cosine  float64 // 5th percentile
}

// EmbedTexts embeds texts (cut to maxTokens, 0: the context) with m,
// spread over all cores (the vectors do not depend on how many). It
// returns the vectors and the number of tokens.
func EmbedTexts(m *core.Bert, texts []string, maxTokens int) ([][]float32, int) {
	if maxTokens <= 0 || maxTokens > m.Config.SeqLen {
		maxTokens = m.Config.SeqLen
	}
	out := make([][]float32, len(texts))
	ntok := make([]int, len(texts))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(texts)))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := m.NewState(maxTokens)
			for i := w; i < len(texts); i += workers {
				toks := m.Tokenizer.Encode(texts[i], true)
				if len(toks) > maxTokens {
					toks = append(toks[:maxTokens-1], m.Tokenizer.SEP)
				}
				out[i] = make([]float32, m.Config.Dim)
				m.Embed(s, toks, out[i])
				ntok[i] = len(toks)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range ntok {
		total += n
	}
	return out, total
}

// CompareEmbeddings measures how close got's vectors are to ref's.
func CompareEmbeddings(ref, got [][]float32) EncoderFidelity {
	f := EncoderFidelity{Texts: len(ref), MinCosine: 1}
	cos := make([]float64, len(ref))
	for i := range ref {
		cos[i] = core.Cosine(ref[i], got[i])
		f.MeanCosine += cos[i]
		f.MinCosine = min(f.MinCosine, cos[i])
	}
	if len(cos) > 0 {
		f.MeanCosine /= float64(len(cos))
		sortFloats(cos)
		f.P05Cosine = cos[len(cos)*5/100]
	}
	return f
}

// CompareEncoders embeds texts with both encoders, which must share a
// tokenizer, and compares the vectors (EmbedTexts, CompareEmbeddings).
func CompareEncoders(ref, m *core.Bert, texts []string, maxTokens int) (EncoderFidelity, error) {
	if ref.Config.Dim != m.Config.Dim || len(ref.Tokenizer.Vocab) != len(m.Tokenizer.Vocab) {
		return EncoderFidelity{}, fmt.Errorf("%w: encoders of different shapes or vocabularies", ErrQuant)
	}
	a, n := EmbedTexts(ref, texts, maxTokens)
	b, _ := EmbedTexts(m, texts, maxTokens)
	f := CompareEmbeddings(a, b)
	f.Tokens = n
	return f, nil
}

func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ { // insertion sort: a few hundred values
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// ParseEncoderPolicy reads "SPEC" (every matrix and the embedding) or
// "SPEC,emb=SPEC,ffn_down=SPEC,..." with specs as ParseSpec reads them.
func ParseEncoderPolicy(s string, actGroup int) (*EncoderPolicy, error) {
	p := &EncoderPolicy{Rules: map[string]*Spec{}, ActGroup: actGroup}
	parts := strings.Split(s, ",")
	def, err := ParseSpec(parts[0])
	if err != nil {
		return nil, err
	}
	p.Default, p.Emb = def, def
	for _, r := range parts[1:] {
		k, v, ok := strings.Cut(r, "=")
		if !ok {
			return nil, fmt.Errorf("%w: policy part %q: want NAME=SPEC", ErrQuant, r)
		}
		sp, err := ParseSpec(v)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(k) == "emb" {
			p.Emb = sp
		} else {
			p.Rules[strings.TrimSpace(k)] = sp
		}
	}
	return p, nil
}
