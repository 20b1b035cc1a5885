package engine

import (
	"fmt"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"mote/core"
	"mote/models"
)

// Embeddings: sentence encoders (BERT, e.g. all-MiniLM-L6-v2) held by name,
// for hosts that turn texts into vectors: the web page's embeddings view,
// the Worker's POST /v1/embeddings, `mote embed`. See docs/EMBED.md.
//
// An Embedder is separate from an Engine (which runs language models): the
// two hold different kinds of model with different limits, and a host may
// want either alone. Embed is synchronous, starts no goroutine, and needs
// no timers, for the same reasons as Session.Next (see doc.go).
//
// Memory: each call uses a scratch state for texts up to the model's
// context (about 8 MB for all-MiniLM-L6-v2's 512 positions), so that
// concurrent Embed calls on one model never share one; a model keeps up to
// two idle states for the next calls. The weights are shared and read-only.

// EmbedLimits bound what an Embedder holds and accepts. Zero fields take
// the defaults.
type EmbedLimits struct {
	MaxModels      int // encoders loaded at once (default 2)
	MaxInputs      int // texts per Embed call (default 256)
	MaxInputBytes  int // bytes per text (default 65536)
	MaxTotalTokens int // tokens per Embed call, all texts together (default 65536)
}

// Defaults for EmbedLimits.
const (
	DefaultMaxEncoders    = 2
	DefaultMaxInputs      = 256
	DefaultMaxInputBytes  = 64 << 10
	DefaultMaxTotalTokens = 64 << 10
)

// Embedder holds encoder models by name. It is safe for concurrent use.
type Embedder struct {
	lim EmbedLimits
	par core.BertParallel

	mu     sync.Mutex
	models map[string]*encoder
}

type encoder struct {
	m    *core.Bert
	info EncoderInfo
	par  core.BertParallel

	mu   sync.Mutex
	free []*core.BertState // idle states for the model's whole context
}

// maxIdleStates bounds the idle states kept per model (concurrent calls
// beyond it allocate their own and drop them after).
const maxIdleStates = 2

func (enc *encoder) state() *core.BertState {
	enc.mu.Lock()
	defer enc.mu.Unlock()
	if n := len(enc.free); n > 0 {
		s := enc.free[n-1]
		enc.free = enc.free[:n-1]
		return s
	}
	s := enc.m.NewState(0)
	s.Par = enc.par
	return s
}

func (enc *encoder) release(s *core.BertState) {
	enc.mu.Lock()
	defer enc.mu.Unlock()
	if len(enc.free) < maxIdleStates {
		enc.free = append(enc.free, s)
	}
}

// EncoderInfo describes a loaded encoder.
type EncoderInfo struct {
	Name      string
	Config    core.BertConfig
	Format    models.Format
	Version   int
	FileBytes int64
	Compress  string // "none" or the container's compression
	Checksums string // "verified" or "none"
	Params    int64  // parameters: matrices, embeddings, biases, norms
	DType     string // storage of the attention matrices: "f32", "q8" or "q4"
	GroupSize int    // their scale group size, 0 for f32
	ActGroup  int    // int8 activation groups, 0 for float activations
	Dim       int    // the embedding width (Config.Dim)
	MaxTokens int    // the longest text, in tokens with [CLS] and [SEP] (Config.SeqLen)
}

// NewEmbedder returns an empty Embedder. par, when not nil, splits big
// matrix products across cores (native hosts; nil in wasm).
func NewEmbedder(lim EmbedLimits, par core.BertParallel) *Embedder {
	if lim.MaxModels <= 0 {
		lim.MaxModels = DefaultMaxEncoders
	}
	if lim.MaxInputs <= 0 {
		lim.MaxInputs = DefaultMaxInputs
	}
	if lim.MaxInputBytes <= 0 {
		lim.MaxInputBytes = DefaultMaxInputBytes
	}
	if lim.MaxTotalTokens <= 0 {
		lim.MaxTotalTokens = DefaultMaxTotalTokens
	}
	return &Embedder{lim: lim, par: par, models: map[string]*encoder{}}
}

// Limits returns the limits, defaults filled in.
func (e *Embedder) Limits() EmbedLimits { return e.lim }

// Load reads an encoder held in memory (a GGUF bert model or a mote encoder
// container) and keeps it under name. The Embedder does not keep data.
func (e *Embedder) Load(name string, data []byte) (EncoderInfo, error) {
	if err := checkName(name); err != nil {
		return EncoderInfo{}, err
	}
	if len(data) == 0 {
		return EncoderInfo{}, fmt.Errorf("%w: encoder %q: no bytes given", ErrBadInput, name)
	}
	if err := e.canLoad(name); err != nil { // fail early, before the expensive read
		return EncoderInfo{}, err
	}
	m, info, err := models.ReadEncoderBytes(name, data)
	if err != nil {
		return EncoderInfo{}, err
	}
	return e.Add(name, m, info)
}

// Add keeps an encoder already read (for hosts that read files themselves).
func (e *Embedder) Add(name string, m *core.Bert, info *models.Info) (EncoderInfo, error) {
	if err := checkName(name); err != nil {
		return EncoderInfo{}, err
	}
	if err := m.Validate(); err != nil {
		return EncoderInfo{}, fmt.Errorf("%w: encoder %q: %v", ErrBadInput, name, err)
	}
	if m.Tokenizer == nil {
		return EncoderInfo{}, fmt.Errorf("%w: encoder %q has no tokenizer", ErrNoTokenizer, name)
	}
	if info == nil {
		info = &models.Info{Checksums: "none", Compress: "none"}
	}
	ei := describeEncoder(name, m, info)
	enc := &encoder{m: m, info: ei, par: e.par}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.canLoadLocked(name); err != nil {
		return EncoderInfo{}, err
	}
	e.models[name] = enc
	return ei, nil
}

func (e *Embedder) canLoad(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.canLoadLocked(name)
}

func (e *Embedder) canLoadLocked(name string) error {
	if _, ok := e.models[name]; ok {
		return fmt.Errorf("%w: encoder %q (unload it first)", ErrExists, name)
	}
	if len(e.models) >= e.lim.MaxModels {
		return fmt.Errorf("%w: %d encoders loaded, the most this embedder holds", ErrLimit, len(e.models))
	}
	return nil
}

func describeEncoder(name string, m *core.Bert, info *models.Info) EncoderInfo {
	ei := EncoderInfo{Name: name, Config: m.Config, Format: info.Format, Version: info.Version,
		FileBytes: info.FileBytes, Compress: info.Compress, Checksums: info.Checksums,
		Params: m.Config.NumWeights(), ActGroup: m.ActGroup, Dim: m.Config.Dim, MaxTokens: m.Config.SeqLen}
	wq := &m.Weights.Layers[0].Wq.W // Validate guarantees at least one layer
	ei.DType = wq.Type.String()
	if wq.Type != core.F32 {
		ei.GroupSize = wq.GroupSize
	}
	return ei
}

// Unload forgets an encoder; calls already running on it finish normally.
func (e *Embedder) Unload(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.models[name]; !ok {
		return fmt.Errorf("%w: encoder %q", ErrNoModel, name)
	}
	delete(e.models, name)
	return nil
}

// Models lists the loaded encoders by name.
func (e *Embedder) Models() []EncoderInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]EncoderInfo, 0, len(e.models))
	for _, m := range e.models {
		out = append(out, m.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *Embedder) get(name string) (*encoder, error) {
	e.mu.Lock()
	m, ok := e.models[name]
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: encoder %q is not loaded", ErrNoModel, name)
	}
	return m, nil
}

// EmbedOptions change how texts are read.
type EmbedOptions struct {
	// Truncate cuts a text longer than the model's context to its first
	// MaxTokens-1 tokens and [SEP], instead of failing.
	Truncate bool
	// Literal tokenizes special-token texts ("[SEP]", "[MASK]") as text.
	// By default they are those tokens, as in llama.cpp and Hugging Face.
	Literal bool
}

// Embeddings are the result of one Embed call.
type Embeddings struct {
	Vectors     [][]float32 // one L2-normalized vector (dim) per text
	Tokens      []int       // tokens per text, [CLS] and [SEP] included
	Truncated   []bool      // whether a text was cut to the context (Options.Truncate)
	TotalTokens int
}

// Tokenize returns the token ids of a text as Embed reads it ([CLS] ...
// [SEP]), before any truncation.
func (e *Embedder) Tokenize(model, text string, o EmbedOptions) ([]int, error) {
	enc, err := e.get(model)
	if err != nil {
		return nil, err
	}
	if err := e.checkText(0, text); err != nil {
		return nil, err
	}
	return enc.m.Tokenizer.Encode(text, !o.Literal), nil
}

func (e *Embedder) checkText(i int, text string) error {
	switch {
	case len(text) > e.lim.MaxInputBytes:
		return fmt.Errorf("%w: input %d has %d bytes, more than the limit of %d", ErrBadInput, i, len(text), e.lim.MaxInputBytes)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: input %d is not valid UTF-8", ErrBadInput, i)
	}
	return nil
}

// Embed turns texts into sentence embeddings. All texts are tokenized and
// checked against the limits before any is encoded: a call either embeds
// every text or fails without doing the work.
func (e *Embedder) Embed(model string, texts []string, o EmbedOptions) (*Embeddings, error) {
	enc, err := e.get(model)
	if err != nil {
		return nil, err
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: no input texts", ErrBadInput)
	}
	if len(texts) > e.lim.MaxInputs {
		return nil, fmt.Errorf("%w: %d input texts, more than the limit of %d", ErrLimit, len(texts), e.lim.MaxInputs)
	}
	m := enc.m
	maxTok := m.Config.SeqLen
	r := &Embeddings{Vectors: make([][]float32, len(texts)), Tokens: make([]int, len(texts)), Truncated: make([]bool, len(texts))}
	toks := make([][]int, len(texts))
	for i, text := range texts {
		if err := e.checkText(i, text); err != nil {
			return nil, err
		}
		t := m.Tokenizer.Encode(text, !o.Literal)
		if len(t) > maxTok {
			if !o.Truncate {
				return nil, fmt.Errorf("%w: input %d is %d tokens, more than the model's context of %d (ask to truncate)",
					ErrLimit, i, len(t), maxTok)
			}
			t = append(t[:maxTok-1], m.Tokenizer.SEP)
			r.Truncated[i] = true
		}
		toks[i] = t
		r.Tokens[i] = len(t)
		r.TotalTokens += len(t)
		if r.TotalTokens > e.lim.MaxTotalTokens {
			return nil, fmt.Errorf("%w: more than %d tokens in one call", ErrLimit, e.lim.MaxTotalTokens)
		}
	}
	s := enc.state()
	defer enc.release(s)
	vecs := make([]float32, len(texts)*m.Config.Dim) // one allocation for all vectors
	for i, t := range toks {
		v := vecs[i*m.Config.Dim : (i+1)*m.Config.Dim : (i+1)*m.Config.Dim]
		m.Embed(s, t, v)
		r.Vectors[i] = v
	}
	return r, nil
}

// EmbedBench is what BenchEmbed measured.
type EmbedBench struct {
	Tokens    int           // tokens of the text, [CLS] and [SEP] included
	Runs      int           // embeddings computed (after one warm-up)
	Elapsed   time.Duration // for all runs
	PerSecond float64       // embeddings per second
	MsPerTok  float64       // milliseconds per token
}

// BenchEmbed embeds one text runs times (after a warm-up run) and reports
// the speed. It is the one benchmark loop behind `mote embed --bench`
// (native and wasip1) and the js build's embedBench (browsers), so that the
// figures of every target measure the same work.
func (e *Embedder) BenchEmbed(model, text string, runs int) (EmbedBench, error) {
	if runs <= 0 || runs > 1<<20 {
		return EmbedBench{}, fmt.Errorf("%w: runs %d outside 1..%d", ErrBadInput, runs, 1<<20)
	}
	enc, err := e.get(model)
	if err != nil {
		return EmbedBench{}, err
	}
	if err := e.checkText(0, text); err != nil {
		return EmbedBench{}, err
	}
	m := enc.m
	t := m.Tokenizer.Encode(text, true)
	if len(t) > m.Config.SeqLen {
		return EmbedBench{}, fmt.Errorf("%w: the text is %d tokens, more than the context of %d", ErrLimit, len(t), m.Config.SeqLen)
	}
	s := enc.state()
	defer enc.release(s)
	v := make([]float32, m.Config.Dim)
	m.Embed(s, t, v) // warm-up: first touch of the state's memory
	start := time.Now()
	for i := 0; i < runs; i++ {
		m.Embed(s, t, v)
	}
	el := time.Since(start)
	b := EmbedBench{Tokens: len(t), Runs: runs, Elapsed: el}
	if sec := el.Seconds(); sec > 0 {
		b.PerSecond = float64(runs) / sec
		b.MsPerTok = sec * 1000 / float64(runs*len(t))
	}
	return b, nil
}

// The benchmark inputs of docs/EMBED.md, for every target: a 12-token
// sentence and a 128-token paragraph (all-MiniLM-L6-v2's tokens, [CLS] and
// [SEP] included; the paragraph is from TinyStories' validation set).
const (
	BenchSentence  = "Lily found a big red ball in the garden."
	BenchParagraph = "Once upon a time, in a big forest, there lived a rhinoceros named Roxy. Roxy loved to climb. " +
		"She climbed trees, rocks, and hills. One day, Roxy found an icy hill. She had never seen anything like it before. " +
		"It was shiny and cold, and she wanted to climb it. Roxy tried to climb the icy hill, but it was very slippery. " +
		"She tried again and again, but she kept falling down. Roxy was sad. She wanted to climb the icy hill so much. " +
		"Then, she saw a little bird named Billy. Billy saw that Roxy was sad and asked, \"Why are"
)
