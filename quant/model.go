package quant

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"mote/core"
	"mote/models"
)

// Tensor classes a policy names, llama2.c's names with GGUF's (and the
// container's) beside them. Per-layer matrices are "wk.3" or
// "blk.3.attn_k"; the class name alone ("wk" or "attn_k") matches every
// layer.
var tensorClasses = []string{"emb", "cls", "wq", "wk", "wv", "wo", "w1", "w2", "w3"}

var ggufClass = map[string]string{"emb": "token_embd", "cls": "output", "wq": "attn_q", "wk": "attn_k",
	"wv": "attn_v", "wo": "attn_output", "w1": "ffn_gate", "w2": "ffn_down", "w3": "ffn_up"}

// containerName is a matrix's name in the container (and GGUF).
func containerName(cls string, layer int) string {
	if layer < 0 {
		return ggufClass[cls]
	}
	return fmt.Sprintf("blk.%d.%s", layer, ggufClass[cls])
}

// normTensorName maps any accepted spelling to "cls" or "cls.layer", or "".
func normTensorName(name string) string {
	if name == "*" {
		return name
	}
	if rest, ok := strings.CutPrefix(name, "blk."); ok {
		num, cls, ok := strings.Cut(rest, ".")
		l, err := strconv.Atoi(num)
		if !ok || err != nil || l < 0 || l >= core.MaxLayers || strconv.Itoa(l) != num {
			return ""
		}
		for short, g := range ggufClass {
			if g == cls && short != "emb" && short != "cls" {
				return short + "." + num
			}
		}
		return ""
	}
	cls, layer, hasLayer := strings.Cut(name, ".")
	for short, g := range ggufClass {
		if cls == g {
			cls = short
		}
	}
	if ggufClass[cls] == "" {
		return ""
	}
	if !hasLayer {
		return cls
	}
	l, err := strconv.Atoi(layer)
	if cls == "emb" || cls == "cls" || err != nil || l < 0 || l >= core.MaxLayers || strconv.Itoa(l) != layer {
		return ""
	}
	return cls + "." + layer
}

// Policy says how each matrix of a model is quantized: a default, then
// class overrides ("wk"), then per-layer overrides ("wk.3"). A nil *Spec
// keeps the matrix in fp32. Norm weights always stay fp32.
type Policy struct {
	Default  *Spec
	Rules    map[string]*Spec // by class or class.layer
	ActGroup int              // activation quantization group of the result (0: float activations)
}

// SpecFor is the spec of tensor class cls in layer l (l < 0 for emb/cls).
func (p *Policy) SpecFor(cls string, l int) *Spec {
	if l >= 0 {
		if s, ok := p.Rules[cls+"."+strconv.Itoa(l)]; ok {
			return s
		}
	}
	if s, ok := p.Rules[cls]; ok {
		return s
	}
	if cls == "cls" { // a separate classifier follows the embedding unless told otherwise
		if s, ok := p.Rules["emb"]; ok {
			return s
		}
	}
	return p.Default
}

// Quantized is a quantized model: the model the kernels run, and the form
// of each quantized matrix to store, by container name (token_embd,
// blk.3.attn_k, ...; fp32 matrices are absent), ready for
// models.WriteOptions.Packed.
type Quantized struct {
	Model *core.Model
	Mats  map[string]*models.PackedMat
}

// matRef is one matrix of a model with its name and calibration input.
type matRef struct {
	name, cls string
	layer     int
	m         *core.Mat
	h         *Gram
}

func modelMats(m *core.Model, cal *Calibration) []matRef {
	w := &m.Weights
	var refs []matRef
	gram := func(gs []*Gram, l int) *Gram {
		if cal == nil {
			return nil
		}
		return gs[l]
	}
	var final *Gram
	if cal != nil {
		final = cal.Final
	}
	if m.SharedClassifier() {
		// shared: the classifier's output error is what the model feels most
		refs = append(refs, matRef{name: "emb", cls: "emb", layer: -1, m: &w.TokenEmbedding, h: final})
	} else {
		refs = append(refs, matRef{name: "emb", cls: "emb", layer: -1, m: &w.TokenEmbedding},
			matRef{name: "cls", cls: "cls", layer: -1, m: w.Wcls, h: final})
	}
	for l := 0; l < m.Config.NLayers; l++ {
		var attIn, attOut, ffnIn, ffnHid []*Gram
		if cal != nil {
			attIn, attOut, ffnIn, ffnHid = cal.AttIn, cal.AttOut, cal.FFNIn, cal.FFNHid
		}
		for _, t := range []struct {
			cls string
			ms  []core.Mat
			gs  []*Gram
		}{{"wq", w.Wq, attIn}, {"wk", w.Wk, attIn}, {"wv", w.Wv, attIn}, {"wo", w.Wo, attOut},
			{"w1", w.W1, ffnIn}, {"w2", w.W2, ffnHid}, {"w3", w.W3, ffnIn}} {
			var h *Gram
			if t.gs != nil {
				h = gram(t.gs, l)
			}
			refs = append(refs, matRef{name: fmt.Sprintf("%s.%d", t.cls, l), cls: t.cls, layer: l, m: &t.ms[l], h: h})
		}
	}
	return refs
}

// QuantizeModel quantizes every matrix of an fp32 (or already quantized,
// then dequantized first) model as the policy says, using the calibration
// Gram matrices (cal may be nil: unweighted). The result shares the norm
// weights and tokenizer with m.
func QuantizeModel(m *core.Model, cal *Calibration, p *Policy) (*Quantized, error) {
	refs := modelMats(m, cal)
	qm := &core.Model{Config: m.Config, Tokenizer: m.Tokenizer, ActGroup: p.ActGroup}
	w, qw := &m.Weights, &qm.Weights
	qw.RmsAtt, qw.RmsFFN, qw.RmsFinal = w.RmsAtt, w.RmsFFN, w.RmsFinal
	qw.Wq, qw.Wk, qw.Wv, qw.Wo = make([]core.Mat, len(w.Wq)), make([]core.Mat, len(w.Wk)), make([]core.Mat, len(w.Wv)), make([]core.Mat, len(w.Wo))
	qw.W1, qw.W2, qw.W3 = make([]core.Mat, len(w.W1)), make([]core.Mat, len(w.W2)), make([]core.Mat, len(w.W3))
	dst := func(r matRef) *core.Mat {
		switch r.cls {
		case "emb":
			return &qw.TokenEmbedding
		case "cls":
			qw.Wcls = new(core.Mat)
			return qw.Wcls
		}
		return &map[string][]core.Mat{"wq": qw.Wq, "wk": qw.Wk, "wv": qw.Wv, "wo": qw.Wo,
			"w1": qw.W1, "w2": qw.W2, "w3": qw.W3}[r.cls][r.layer]
	}
	out := &Quantized{Model: qm, Mats: map[string]*models.PackedMat{}}
	dsts := make([]*core.Mat, len(refs))
	for i, r := range refs {
		dsts[i] = dst(r)
	}
	// matrices are independent: quantize them on all cores
	qs := make([]*models.PackedMat, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, r := range refs {
		spec := p.SpecFor(r.cls, r.layer)
		if spec == nil {
			*dsts[i] = core.NewMatF32(r.m.Rows, r.m.Cols, dequantF32(r.m))
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			qs[i], errs[i] = QuantizeMat(dequantF32(r.m), r.m.Rows, r.m.Cols, r.h, *spec)
		}()
	}
	wg.Wait()
	for i, r := range refs {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", r.name, errs[i])
		}
		if qs[i] != nil {
			*dsts[i] = qs[i].Core()
			out.Mats[containerName(r.cls, r.layer)] = qs[i]
		}
	}
	if m.SharedClassifier() {
		qw.Wcls = &qw.TokenEmbedding
	}
	if err := qm.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuant, err)
	}
	return out, nil
}

// ParseSpec reads a spec written as Spec.String does, e.g.
// "4b/nl/g16/log8+gptq" or "8b/uniform/grow/f16"; "f32" means no
// quantization (nil).
func ParseSpec(s string) (*Spec, error) {
	s = strings.TrimSpace(s)
	if s == "f32" {
		return nil, nil
	}
	var sp Spec
	if rest, ok := strings.CutSuffix(s, "+gptq"); ok {
		sp.GPTQ, s = true, rest
	}
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return nil, fmt.Errorf("%w: spec %q: want BITSb/BOOK/gGROUP/SCALE[+gptq], e.g. 4b/nl/g16/log8+gptq", ErrQuant, s)
	}
	bits, err := strconv.Atoi(strings.TrimSuffix(parts[0], "b"))
	if err != nil || !strings.HasSuffix(parts[0], "b") {
		return nil, fmt.Errorf("%w: spec %q: bad bit width %q", ErrQuant, s, parts[0])
	}
	sp.Bits = bits
	switch parts[1] {
	case "uniform":
		sp.Book = BookUniform
	case "nl":
		sp.Book = BookNL
	case "learned":
		sp.Book = BookLearned
	default:
		return nil, fmt.Errorf("%w: spec %q: codebook %q (uniform, nl, learned)", ErrQuant, s, parts[1])
	}
	switch g := parts[2]; {
	case g == "grow":
		sp.Group = 0
	case strings.HasPrefix(g, "g"):
		if sp.Group, err = strconv.Atoi(g[1:]); err != nil || sp.Group <= 0 {
			return nil, fmt.Errorf("%w: spec %q: group %q", ErrQuant, s, g)
		}
	default:
		return nil, fmt.Errorf("%w: spec %q: group %q (gN or grow)", ErrQuant, s, g)
	}
	switch parts[3] {
	case "f32":
		sp.Scale = ScaleF32
	case "f16":
		sp.Scale = ScaleF16
	case "log8":
		sp.Scale = ScaleLog8
	default:
		return nil, fmt.Errorf("%w: spec %q: scale %q (f32, f16, log8)", ErrQuant, s, parts[3])
	}
	return &sp, sp.Check()
}

// FormatSpec writes a spec for ParseSpec (nil: "f32").
func FormatSpec(s *Spec) string {
	if s == nil {
		return "f32"
	}
	g := "grow"
	if s.Group > 0 {
		g = fmt.Sprintf("g%d", s.Group)
	}
	out := fmt.Sprintf("%db/%v/%s/%v", s.Bits, s.Book, g, s.Scale)
	if s.GPTQ {
		out += "+gptq"
	}
	return out
}

// ParsePolicy reads a policy file: lines "NAME = SPEC" where NAME is "*"
// (the default), a class (emb, cls, wq, wk, wv, wo, w1, w2, w3) or a
// class and layer ("wk.3"), and SPEC is as ParseSpec reads it; and
// "act = N" for the activation group (0: float activations). '#' starts
// a comment.
func ParsePolicy(text string) (*Policy, error) {
	p := &Policy{Rules: map[string]*Spec{}}
	seenDefault := false
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: policy line %d: want NAME = SPEC", ErrQuant, n+1)
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if name == "act" {
			g, err := strconv.Atoi(val)
			if err != nil || g < 0 || g > 1<<16 {
				return nil, fmt.Errorf("%w: policy line %d: activation group %q", ErrQuant, n+1, val)
			}
			p.ActGroup = g
			continue
		}
		short := normTensorName(name)
		if short == "" {
			return nil, fmt.Errorf("%w: policy line %d: unknown tensor %q (*, a class: %s, or their GGUF names; CLASS.LAYER or blk.LAYER.NAME for one layer)",
				ErrQuant, n+1, name, strings.Join(tensorClasses, ", "))
		}
		name = short
		sp, err := ParseSpec(val)
		if err != nil {
			return nil, fmt.Errorf("policy line %d: %w", n+1, err)
		}
		if name == "*" {
			p.Default, seenDefault = sp, true
		} else {
			p.Rules[name] = sp
		}
	}
	if !seenDefault {
		return nil, fmt.Errorf("%w: policy has no default line (* = SPEC)", ErrQuant)
	}
	return p, nil
}

// String writes the policy in the file format ParsePolicy reads.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "act = %d\n* = %s\n", p.ActGroup, FormatSpec(p.Default))
	names := make([]string, 0, len(p.Rules))
	for n := range p.Rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s = %s\n", n, FormatSpec(p.Rules[n]))
	}
	return b.String()
}
