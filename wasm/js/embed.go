//go:build js && wasm

package main

import (
	"fmt"
	"math"
	"syscall/js"
	"unsafe"

	"mote/engine"
)

// Sentence embeddings (engine.Embedder; docs/EMBED.md):
//
//	loadEncoder(name, bytes) -> info            a GGUF bert model or a mote encoder container
//	unloadEncoder(name) -> undefined
//	encoders() -> [info, ...]
//	embed(name, textOrArray [, {truncate, literal}]) -> {model, dim, embeddings, tokens, truncated, total_tokens}
//	    embeddings: one Float32Array (dim, unit length) per text; tokens: per text, [CLS] and [SEP] included
//	embedBench(name, text, runs) -> {tokens, runs, seconds, per_second, ms_per_token}
//	    the benchmark loop of `mote embed --bench` (engine.BenchEmbed), for browsers
//	benchTexts() -> {sentence, paragraph}
//	    engine.BenchSentence (12 tokens) and engine.BenchParagraph (128 tokens): the texts of
//	    docs/EMBED.md's speed table, so that every target times the same input

var emb = engine.NewEmbedder(engine.EmbedLimits{}, nil)

var embedFuncs = map[string]func([]js.Value) (any, error){
	"loadEncoder": loadEncoder, "unloadEncoder": unloadEncoder, "encoders": listEncoders,
	"embed": embed, "embedBench": embedBench, "benchTexts": benchTexts,
}

func benchTexts([]js.Value) (any, error) {
	return map[string]any{"sentence": engine.BenchSentence, "paragraph": engine.BenchParagraph}, nil
}

func loadEncoder(args []js.Value) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%w: loadEncoder(name, bytes) takes 2 arguments, got %d", errArg, len(args))
	}
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	data, err := byteArg(args[1], "bytes")
	if err != nil {
		return nil, err
	}
	ei, err := emb.Load(name, data)
	if err != nil {
		return nil, err
	}
	return encoderInfo(ei), nil
}

func unloadEncoder(args []js.Value) (any, error) {
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	return nil, emb.Unload(name)
}

func listEncoders([]js.Value) (any, error) {
	ms := emb.Models()
	out := make([]any, len(ms))
	for i, ei := range ms {
		out[i] = encoderInfo(ei)
	}
	return out, nil
}

func encoderInfo(ei engine.EncoderInfo) map[string]any {
	c := ei.Config
	return map[string]any{
		"name": ei.Name, "kind": "encoder", "format": string(ei.Format), "version": ei.Version, "size": ei.FileBytes,
		"compress": ei.Compress, "checksums": ei.Checksums, "params": ei.Params,
		"dtype": ei.DType, "group_size": ei.GroupSize, "act_group": ei.ActGroup,
		"dim": ei.Dim, "max_tokens": ei.MaxTokens,
		"config": map[string]any{
			"dim": c.Dim, "hidden_dim": c.HiddenDim, "n_layers": c.NLayers, "n_heads": c.NHeads,
			"vocab_size": c.VocabSize, "seq_len": c.SeqLen, "type_vocab": c.TypeVocab, "norm_eps": c.NormEps,
		},
	}
}

func embed(args []js.Value) (any, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, fmt.Errorf("%w: embed(name, textOrArray [, options]) takes 2 or 3 arguments, got %d", errArg, len(args))
	}
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	var texts []string
	switch v := args[1]; {
	case v.Type() == js.TypeString:
		texts = []string{v.String()}
	case js.Global().Get("Array").Call("isArray", v).Bool():
		n := v.Length()
		if n > emb.Limits().MaxInputs {
			return nil, fmt.Errorf("%w: %d texts, more than the limit of %d", engine.ErrLimit, n, emb.Limits().MaxInputs)
		}
		texts = make([]string, n)
		for i := range texts {
			if t := v.Index(i); t.Type() != js.TypeString {
				return nil, fmt.Errorf("%w: text %d must be a string, got %s", errArg, i, t.Type())
			} else {
				texts[i] = t.String()
			}
		}
	default:
		return nil, fmt.Errorf("%w: texts must be a string or an array of strings, got %s", errArg, v.Type())
	}
	var o engine.EmbedOptions
	if len(args) == 3 {
		if err := embedOptions(args[2], &o); err != nil {
			return nil, err
		}
	}
	r, err := emb.Embed(name, texts, o)
	if err != nil {
		return nil, err
	}
	f32 := js.Global().Get("Float32Array")
	u8 := js.Global().Get("Uint8Array")
	vecs := make([]any, len(r.Vectors))
	toks := make([]any, len(r.Tokens))
	trunc := make([]any, len(r.Truncated))
	for i, v := range r.Vectors {
		a := f32.New(len(v))
		// wasm and every JS engine in use are little-endian: the bytes of a
		// []float32 are the Float32Array's
		js.CopyBytesToJS(u8.New(a.Get("buffer")), unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
		vecs[i], toks[i], trunc[i] = a, r.Tokens[i], r.Truncated[i]
	}
	dim := 0
	if len(r.Vectors) > 0 {
		dim = len(r.Vectors[0])
	}
	return map[string]any{"model": name, "dim": dim, "embeddings": vecs, "tokens": toks,
		"truncated": trunc, "total_tokens": r.TotalTokens}, nil
}

// embedOptions reads {truncate, literal}; unknown keys are errors.
func embedOptions(v js.Value, o *engine.EmbedOptions) error {
	if v.IsUndefined() || v.IsNull() {
		return nil
	}
	if v.Type() != js.TypeObject {
		return fmt.Errorf("%w: options must be an object, got %s", errArg, v.Type())
	}
	keys := js.Global().Get("Object").Call("keys", v)
	for i := 0; i < keys.Length(); i++ {
		k := keys.Index(i).String()
		f := v.Get(k)
		if f.IsUndefined() {
			continue
		}
		if f.Type() != js.TypeBoolean {
			return fmt.Errorf("%w: option %s must be a boolean, got %s", errArg, k, f.Type())
		}
		switch k {
		case "truncate":
			o.Truncate = f.Bool()
		case "literal":
			o.Literal = f.Bool()
		default:
			return fmt.Errorf("%w: unknown option %q (known: truncate, literal)", errArg, k)
		}
	}
	return nil
}

func embedBench(args []js.Value) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("%w: embedBench(name, text, runs) takes 3 arguments, got %d", errArg, len(args))
	}
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	text, err := str(args, 1, "text")
	if err != nil {
		return nil, err
	}
	if args[2].Type() != js.TypeNumber || args[2].Float() != math.Trunc(args[2].Float()) {
		return nil, fmt.Errorf("%w: runs must be a whole number", errArg)
	}
	b, err := emb.BenchEmbed(name, text, int(min(max(args[2].Float(), 0), math.MaxInt32)))
	if err != nil {
		return nil, err
	}
	return map[string]any{"tokens": b.Tokens, "runs": b.Runs, "seconds": b.Elapsed.Seconds(),
		"per_second": b.PerSecond, "ms_per_token": b.MsPerTok}, nil
}
