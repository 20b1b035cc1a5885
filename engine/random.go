package engine

import (
	"bytes"
	"fmt"

	"mote/core"
	"mote/models"
)

// FormatRandom is ModelInfo.Format of a model made by LoadRandom.
const FormatRandom models.Format = "random"

// LoadRandom keeps under name a model of a named shape (a key of
// core.Shapes, e.g. "15M") with seeded random weights, fp32 or quantized
// ("f32", "q8", "q4") in groups of groupSize. It exists to measure speed
// where no trained model of that shape is at hand (the browser benchmarks):
// speed does not depend on the values. Random models carry no tokenizer, so
// tokenizer (a llama2.c tokenizer .bin for the shape's vocabulary) is
// required.
func (e *Engine) LoadRandom(name, shape, dtype string, groupSize int, seed uint64, tokenizer []byte) (ModelInfo, error) {
	if err := checkName(name); err != nil {
		return ModelInfo{}, err
	}
	c, ok := core.Shapes[shape]
	if !ok {
		return ModelInfo{}, fmt.Errorf("%w: unknown shape %q", ErrBadInput, shape)
	}
	var t core.DType
	switch dtype {
	case "f32":
		t = core.F32
	case "q8":
		t = core.Q8
	case "q4":
		t = core.Q4
	default:
		return ModelInfo{}, fmt.Errorf("%w: dtype %q (want f32, q8 or q4)", ErrBadInput, dtype)
	}
	if t != core.F32 && (groupSize < 1 || groupSize > c.Dim) {
		return ModelInfo{}, fmt.Errorf("%w: group size %d outside 1..%d", ErrBadInput, groupSize, c.Dim)
	}
	if len(tokenizer) == 0 {
		return ModelInfo{}, fmt.Errorf("%w: random models carry no tokenizer; give one for a vocabulary of %d", ErrNoTokenizer, c.VocabSize)
	}
	e.mu.Lock()
	err := e.canLoad(name)
	e.mu.Unlock()
	if err != nil {
		return ModelInfo{}, err
	}
	m, err := core.RandomModel(c, t, groupSize, seed)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	tok, err := models.ReadTokenizer(name+" tokenizer", bytes.NewReader(tokenizer), int64(len(tokenizer)), m.Config.VocabSize)
	if err != nil {
		return ModelInfo{}, err
	}
	m.Tokenizer = tok
	mi := describe(name, m, &models.Info{Format: FormatRandom, Checksums: "none", Compress: "none"}, "separate")

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.canLoad(name); err != nil {
		return ModelInfo{}, err
	}
	e.models[name] = &model{m: m, info: mi}
	return mi, nil
}
