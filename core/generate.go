package core

// Generator runs llama2.c's generate loop one token at a time: the prompt
// tokens are forced, then the sampler picks; generation stops after Steps
// positions (prompt included) or when BOS is sampled.
type Generator struct {
	Model   *Model
	State   *State
	Sampler *Sampler

	prompt []int
	steps  int
	pos    int
	token  int // the token fed at pos
	done   bool
}

// Steps is the number of positions a run of steps will use, clamped as the
// reference clamps -n (0 or more than the context means the whole context).
func (c *Config) Steps(steps int) int {
	if steps <= 0 || steps > c.SeqLen {
		return c.SeqLen
	}
	return steps
}

// NewGenerator starts a generation from prompt tokens (which must begin with
// BOS, as Encode(text, true, false) returns them). The State must hold at
// least Config.Steps(steps) positions.
func (m *Model) NewGenerator(s *State, smp *Sampler, prompt []int, steps int) *Generator {
	g := &Generator{Model: m, State: s, Sampler: smp}
	g.Reset(prompt, steps)
	return g
}

// Reset restarts the generator on a new prompt, reusing its memory.
func (g *Generator) Reset(prompt []int, steps int) {
	g.prompt = prompt
	g.steps = min(g.Model.Config.Steps(steps), g.State.MaxSeq)
	g.pos = 0
	g.done = len(prompt) == 0
	if !g.done {
		g.token = prompt[0]
	}
}

// Pos is the number of positions processed so far.
func (g *Generator) Pos() int { return g.pos }

// Next advances one position and returns the token that follows and its
// printable text (already filtered as the reference's safe_printf does).
// ok is false when generation has ended; then nothing was produced.
func (g *Generator) Next() (token int, text string, ok bool) {
	if g.done || g.pos >= g.steps {
		g.done = true
		return 0, "", false
	}
	logits := g.Model.Forward(g.State, g.token, g.pos)
	var next int
	if g.pos < len(g.prompt)-1 {
		next = g.prompt[g.pos+1]
	} else {
		next = g.Sampler.Sample(logits)
	}
	g.pos++
	tok := g.Model.Tokenizer
	if next == tok.BOS {
		g.done = true
		return 0, "", false
	}
	text = SafePiece(tok.Decode(g.token, next))
	g.token = next
	return next, text, true
}
