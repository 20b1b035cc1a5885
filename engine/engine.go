package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"mote/core"
	"mote/models"
)

// Version is mote's version, as the js build reports it.
const Version = "0.1.0-dev"

// Sentinel errors; test with errors.Is.
var (
	ErrNoModel     = errors.New("no such model")
	ErrExists      = errors.New("model already loaded")
	ErrNoSession   = errors.New("no such session")
	ErrLimit       = errors.New("limit reached")
	ErrBadInput    = errors.New("bad input")
	ErrNoTokenizer = errors.New("model has no tokenizer")
)

// Limits bound what an Engine holds. Zero fields take the defaults.
type Limits struct {
	MaxModels      int // models loaded at once (default 4)
	MaxSessions    int // sessions running at once, all models together (default 16)
	MaxPromptBytes int // longest prompt accepted, in bytes (default 16384)
}

// Defaults for Limits.
const (
	DefaultMaxModels      = 4
	DefaultMaxSessions    = 16
	DefaultMaxPromptBytes = 16 << 10
	maxNameBytes          = 128
	maxTemperature        = 100
	// MaxSeed is the largest seed accepted: 2^53-1, so that any seed is a
	// JavaScript number exactly.
	MaxSeed = 1<<53 - 1
)

// Engine holds loaded models and the sessions running on them. It is safe
// for concurrent use.
type Engine struct {
	lim Limits

	mu       sync.Mutex
	models   map[string]*model
	sessions map[int]*Session
	nextID   int
}

type model struct {
	m    *core.Model
	info ModelInfo
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Name      string
	Config    core.Config
	Format    models.Format
	Version   int
	FileBytes int64  // size of the model file
	Compress  string // "none" or the container's compression
	Checksums string // "verified" or "none"
	Params    int64  // parameters (matrices and norms)
	DType     string // storage of the attention matrices: "f32" or "q8"
	GroupSize int    // q8 group size, 0 for f32
	Tokenizer string // "model" (carried by the file) or "separate"
}

// New returns an empty Engine.
func New(lim Limits) *Engine {
	if lim.MaxModels <= 0 {
		lim.MaxModels = DefaultMaxModels
	}
	if lim.MaxSessions <= 0 {
		lim.MaxSessions = DefaultMaxSessions
	}
	if lim.MaxPromptBytes <= 0 {
		lim.MaxPromptBytes = DefaultMaxPromptBytes
	}
	return &Engine{lim: lim, models: map[string]*model{}, sessions: map[int]*Session{}}
}

// Limits returns the engine's limits, defaults filled in.
func (e *Engine) Limits() Limits { return e.lim }

// Load reads a model file held in memory (any format models.ReadBytes
// reads) and keeps it under name. tokenizer, when not empty, is a llama2.c
// tokenizer .bin that replaces the model's own; formats without one need it.
// The engine does not keep data or tokenizer.
func (e *Engine) Load(name string, data, tokenizer []byte) (ModelInfo, error) {
	return e.LoadFrom(name, bytes.NewReader(data), int64(len(data)), tokenizer)
}

// LoadFrom is Load reading the model from r, which yields size bytes: the
// weights go straight from r into their final slices, so a host that can
// stream (the js build reading a JavaScript buffer piece by piece, a worker
// reading an asset) never holds the model twice in Go's memory.
func (e *Engine) LoadFrom(name string, r io.Reader, size int64, tokenizer []byte) (ModelInfo, error) {
	if err := checkName(name); err != nil {
		return ModelInfo{}, err
	}
	if size <= 0 {
		return ModelInfo{}, fmt.Errorf("%w: model %q: no bytes given", ErrBadInput, name)
	}
	e.mu.Lock()
	err := e.canLoad(name)
	e.mu.Unlock()
	if err != nil { // fail early, before the expensive read
		return ModelInfo{}, err
	}

	m, info, err := models.Read(name, r, size)
	if err != nil {
		return ModelInfo{}, err
	}
	tokFrom := "model"
	if len(tokenizer) > 0 {
		t, err := models.ReadTokenizer(name+" tokenizer", bytes.NewReader(tokenizer), int64(len(tokenizer)), m.Config.VocabSize)
		if err != nil {
			return ModelInfo{}, err
		}
		m.Tokenizer = t
		tokFrom = "separate"
	}
	if m.Tokenizer == nil {
		return ModelInfo{}, fmt.Errorf("%w: %s carries no tokenizer; give a llama2.c tokenizer .bin with it (e.g. tok512.bin)", ErrNoTokenizer, name)
	}
	mi := describe(name, m, info, tokFrom)

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.canLoad(name); err != nil { // another Load may have raced us
		return ModelInfo{}, err
	}
	e.models[name] = &model{m: m, info: mi}
	return mi, nil
}

// canLoad checks the name and the model cap; e.mu is held.
func (e *Engine) canLoad(name string) error {
	if _, ok := e.models[name]; ok {
		return fmt.Errorf("%w: %q (unload it first)", ErrExists, name)
	}
	if len(e.models) >= e.lim.MaxModels {
		return fmt.Errorf("%w: %d models loaded, the most this engine holds", ErrLimit, len(e.models))
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) {
		return fmt.Errorf("%w: model name must be 1..%d bytes of UTF-8, got %q", ErrBadInput, maxNameBytes, name)
	}
	return nil
}

func describe(name string, m *core.Model, info *models.Info, tokFrom string) ModelInfo {
	mi := ModelInfo{Name: name, Config: m.Config, Format: info.Format, Version: info.Version,
		FileBytes: info.FileBytes, Compress: info.Compress, Checksums: info.Checksums,
		Params: m.Config.NumWeights(m.SharedClassifier()), Tokenizer: tokFrom}
	wq := &m.Weights.Wq[0] // Validate guarantees one per layer, at least one layer
	mi.DType = wq.Type.String()
	if wq.Type != core.F32 {
		mi.GroupSize = wq.GroupSize
	}
	return mi
}

// Unload forgets a model. Sessions already running on it finish normally;
// its memory is freed when the last one ends.
func (e *Engine) Unload(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.models[name]; !ok {
		return fmt.Errorf("%w: %q", ErrNoModel, name)
	}
	delete(e.models, name)
	return nil
}

// Models lists the loaded models by name.
func (e *Engine) Models() []ModelInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]ModelInfo, 0, len(e.models))
	for _, m := range e.models {
		out = append(out, m.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Options of one generation. The zero value is greedy over the whole
// context with a clock seed; DefaultOptions gives llama2.c's defaults.
type Options struct {
	Temperature float32 // 0: greedy (argmax); otherwise 0 < t <= 100
	TopP        float32 // nucleus sampling threshold in [0, 1]; 0 or 1: plain sampling
	Seed        int64   // RNG seed in 1..MaxSeed; 0: taken from the clock
	Steps       int     // positions including the prompt; 0 or more than the context: the whole context
}

// DefaultOptions are `mote run`'s (llama2.c's) defaults: -t 1 -p 0.9 -n 256.
func DefaultOptions() Options { return Options{Temperature: 1, TopP: 0.9, Steps: 256} }

// Check validates the options.
func (o *Options) Check() error {
	t, p := float64(o.Temperature), float64(o.TopP)
	switch {
	case math.IsNaN(t) || t < 0 || t > maxTemperature:
		return fmt.Errorf("%w: temperature %g outside 0..%d", ErrBadInput, t, maxTemperature)
	case math.IsNaN(p) || p < 0 || p > 1:
		return fmt.Errorf("%w: topp %g outside 0..1", ErrBadInput, p)
	case o.Seed < 0 || o.Seed > MaxSeed:
		return fmt.Errorf("%w: seed %d outside 0..%d (0: from the clock)", ErrBadInput, o.Seed, int64(MaxSeed))
	case o.Steps < 0:
		return fmt.Errorf("%w: steps %d is negative (0: the whole context)", ErrBadInput, o.Steps)
	}
	return nil
}

// Start begins a generation of prompt on a loaded model.
func (e *Engine) Start(modelName, prompt string, o Options) (*Session, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if len(prompt) > e.lim.MaxPromptBytes {
		return nil, fmt.Errorf("%w: prompt of %d bytes, more than the limit of %d", ErrBadInput, len(prompt), e.lim.MaxPromptBytes)
	}
	e.mu.Lock()
	md, ok := e.models[modelName]
	err := e.canStart()
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q is not loaded", ErrNoModel, modelName)
	}
	if err != nil { // fail early, before allocating the state
		return nil, err
	}

	s := &Session{eng: e, modelName: modelName}
	s.init(md.m, prompt, o)

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.canStart(); err != nil { // other Starts may have raced us
		return nil, err
	}
	e.nextID++
	s.id = e.nextID
	e.sessions[s.id] = s
	return s, nil
}

// canStart checks the session cap; e.mu is held.
func (e *Engine) canStart() error {
	if len(e.sessions) >= e.lim.MaxSessions {
		return fmt.Errorf("%w: %d sessions running, the most this engine allows; stop one first", ErrLimit, len(e.sessions))
	}
	return nil
}

// Session returns a running session by id.
func (e *Engine) Session(id int) (*Session, error) {
	e.mu.Lock()
	s, ok := e.sessions[id]
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %d (it finished, was stopped, or never existed)", ErrNoSession, id)
	}
	return s, nil
}

// Next advances session id by one token; see Session.Next.
func (e *Engine) Next(id int) (Step, error) {
	s, err := e.Session(id)
	if err != nil {
		return Step{}, err
	}
	return s.Next(), nil
}

// Stop ends session id and frees it. It reports whether the session was
// running; stopping a finished or unknown session is not an error.
func (e *Engine) Stop(id int) bool {
	e.mu.Lock()
	s, ok := e.sessions[id]
	e.mu.Unlock()
	if !ok {
		return false
	}
	s.Stop()
	return true
}

// Sessions is the number of sessions running.
func (e *Engine) Sessions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

// forget removes a session from the table.
func (e *Engine) forget(id int) {
	e.mu.Lock()
	delete(e.sessions, id)
	e.mu.Unlock()
}

// clockSeed is a seed from the clock for Seed 0: nanoseconds, so that
// sessions started together differ, cut to MaxSeed and never 0 (xorshift
// would then draw zeros forever).
func clockSeed() int64 {
	s := time.Now().UnixNano() & MaxSeed
	if s == 0 {
		s = 1
	}
	return s
}
