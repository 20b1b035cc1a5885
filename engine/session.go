package engine

import (
	"sync"

	"mote/core"
)

// Reason says why a session ended.
type Reason string

const (
	ReasonNone    Reason = ""        // still running
	ReasonLength  Reason = "length"  // the step limit (or the context) was reached
	ReasonEnd     Reason = "end"     // the model produced BOS: the text is complete
	ReasonStopped Reason = "stopped" // Stop was called
)

// Step is the result of one Next: a token and its printable text, or the end.
type Step struct {
	Token  int    // token id; -1 when Done
	Text   string // the token's text as `mote run` prints it (may be ""); "" when Done
	Done   bool   // the session has ended and produced nothing this time
	Reason Reason // why it ended, when Done
}

// Session is one generation. Its methods are safe for concurrent use, but
// tokens come out in order: concurrent Next calls on one session serialize.
type Session struct {
	id        int
	eng       *Engine
	modelName string

	mu      sync.Mutex
	gen     *core.Generator // nil once ended
	reason  Reason
	seed    int64
	steps   int // positions this session may use
	nPrompt int // prompt tokens, BOS included
}

// init prepares the generation exactly as cli/run.go does.
func (s *Session) init(m *core.Model, prompt string, o Options) {
	s.seed = o.Seed
	if s.seed == 0 {
		s.seed = clockSeed()
	}
	s.steps = m.Config.Steps(o.Steps)
	st := m.NewState(s.steps)
	smp := core.NewSampler(m.Config.VocabSize, o.Temperature, o.TopP, uint64(s.seed))
	toks := m.Tokenizer.Encode(prompt, true, false)
	s.nPrompt = len(toks)
	s.gen = m.NewGenerator(st, smp, toks, s.steps)
}

// ID is the session's id in its Engine.
func (s *Session) ID() int { return s.id }

// Model is the name of the model the session runs on.
func (s *Session) Model() string { return s.modelName }

// Seed is the RNG seed in use (the clock's when Options.Seed was 0).
func (s *Session) Seed() int64 { return s.seed }

// Steps is the number of positions the session may use (prompt included).
func (s *Session) Steps() int { return s.steps }

// PromptTokens is the number of prompt tokens, BOS included.
func (s *Session) PromptTokens() int { return s.nPrompt }

// Pos is the number of positions processed so far (0 once ended).
func (s *Session) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		return 0
	}
	return s.gen.Pos()
}

// Next runs one position and returns the token that follows, or Done with
// the reason once the session has ended; it then frees the session. While
// prompt tokens are forced, the prompt's own pieces come out, as `mote run`
// prints them. Next allocates nothing.
func (s *Session) Next() Step {
	s.mu.Lock()
	defer s.mu.Unlock() // deferred: a panic in core must not leave it locked
	if s.gen == nil {
		return Step{Token: -1, Done: true, Reason: s.reason}
	}
	before := s.gen.Pos()
	tok, text, ok := s.gen.Next()
	if ok {
		return Step{Token: tok, Text: text}
	}
	// Generator.Next fails either without running (the step limit) or after
	// running a position whose sampled token was BOS.
	r := ReasonLength
	if s.gen.Pos() > before {
		r = ReasonEnd
	}
	s.end(r)
	return Step{Token: -1, Done: true, Reason: r}
}

// Stop ends the session early and frees it. Stopping an ended session does
// nothing.
func (s *Session) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != nil {
		s.end(ReasonStopped)
	}
}

// end drops the state and removes the session from its engine; s.mu is
// held. (Lock order: s.mu, then e.mu; the engine never takes s.mu while
// holding e.mu.)
func (s *Session) end(r Reason) {
	s.gen = nil
	s.reason = r
	s.eng.forget(s.id)
}
