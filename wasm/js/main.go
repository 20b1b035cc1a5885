//go:build js && wasm

// Command js is mote's build for JavaScript hosts (GOOS=js GOARCH=wasm,
// dist/mote-js.wasm): thin syscall/js bindings over mote/engine for the web
// page's Web Worker and the Cloudflare Worker.
//
// Main registers the raw functions on globalThis.moteGo and blocks. The
// public API is globalThis.mote, defined by mote.js beside this file (copied
// to dist/mote.js): it starts the wasm module and wraps every raw function
// so that a failure throws. The split exists because a Go function called
// from JavaScript cannot throw (wasm_exec.js returns whatever Go returns, and
// a Go panic ends the program), and hosts such as workerd forbid building a
// throwing wrapper with eval or new Function. So a raw function returns a JS
// Error object on failure (never a success value) and mote.js throws it.
//
// Raw functions (all synchronous; none starts a goroutine, so all work runs
// inside the caller's call and Go needs no timers, see TOOLCHAIN.md):
//
//	version() -> string
//	load(name, bytes [, tokenizerBytes]) -> info      bytes: Uint8Array, ArrayBuffer or a typed-array view
//	unload(name) -> undefined
//	models() -> [info, ...]
//	start(model, prompt [, {temperature, topp, seed, steps}]) -> session id (number)
//	next(id) -> {token, text, done, reason}
//	stop(id) -> bool (whether it was running)
//	session(id) -> {id, model, seed, steps, prompt_tokens, pos}
//	random(name, shape, dtype, groupSize, seed, tokenizerBytes) -> info   (random.go)
//	loadEncoder, unloadEncoder, encoders, embed, embedBench: sentence embeddings (embed.go)
//
// Errors carry the Go message, plus a code property for hosts that map them
// to HTTP statuses: bad_input, no_model, exists, no_session, limit,
// no_tokenizer, bad_model (a model or tokenizer file was rejected), internal
// (a recovered panic: a bug).
package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"syscall/js"

	"mote/engine"
	"mote/models"
)

var eng = engine.New(engine.Limits{})

func main() {
	api := js.Global().Get("Object").New()
	for name, fn := range map[string]func([]js.Value) (any, error){
		"version": version, "load": load, "unload": unload, "models": listModels,
		"start": start, "next": next, "stop": stop, "session": session,
		"random": random,
	} {
		api.Set(name, wrap(name, fn))
	}
	for name, fn := range embedFuncs {
		api.Set(name, wrap(name, fn))
	}
	js.Global().Set("moteGo", api)
	select {}
}

// wrap turns a Go function into a raw JS function: the result, or an Error
// object for an error or a panic.
func wrap(name string, fn func([]js.Value) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (res any) {
		defer func() {
			if p := recover(); p != nil {
				res = jsError(fmt.Errorf("mote: internal error in %s: %v", name, p), "internal")
			}
		}()
		v, err := fn(args)
		if err != nil {
			return jsError(err, code(err))
		}
		return v
	})
}

func jsError(err error, code string) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", code)
	return e
}

// code classifies an error for hosts.
func code(err error) string {
	var me *models.Error
	switch {
	case errors.Is(err, engine.ErrBadInput), errors.Is(err, errArg):
		return "bad_input"
	case errors.Is(err, engine.ErrNoModel):
		return "no_model"
	case errors.Is(err, engine.ErrExists):
		return "exists"
	case errors.Is(err, engine.ErrNoSession):
		return "no_session"
	case errors.Is(err, engine.ErrLimit):
		return "limit"
	case errors.Is(err, engine.ErrNoTokenizer):
		return "no_tokenizer"
	case errors.As(err, &me):
		return "bad_model"
	}
	return "internal"
}

var errArg = errors.New("bad argument")

func version([]js.Value) (any, error) {
	return fmt.Sprintf("mote %s (%s, %s/%s)", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH), nil
}

func load(args []js.Value) (any, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, fmt.Errorf("%w: load(name, bytes [, tokenizerBytes]) takes 2 or 3 arguments, got %d", errArg, len(args))
	}
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	data, err := byteView(args[1], "bytes")
	if err != nil {
		return nil, err
	}
	var tok []byte
	if len(args) == 3 && !args[2].IsUndefined() && !args[2].IsNull() {
		if tok, err = byteArg(args[2], "tokenizer"); err != nil {
			return nil, err
		}
	}
	mi, err := eng.LoadFrom(name, &jsReader{v: data, n: data.Length()}, int64(data.Length()), tok)
	if err != nil {
		return nil, err
	}
	return info(mi), nil
}

func unload(args []js.Value) (any, error) {
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	return nil, eng.Unload(name)
}

func listModels([]js.Value) (any, error) {
	ms := eng.Models()
	out := make([]any, len(ms))
	for i, mi := range ms {
		out[i] = info(mi)
	}
	return out, nil
}

func info(mi engine.ModelInfo) map[string]any {
	c := mi.Config
	return map[string]any{
		"name": mi.Name, "format": string(mi.Format), "version": mi.Version, "size": mi.FileBytes,
		"compress": mi.Compress, "checksums": mi.Checksums, "params": mi.Params,
		"dtype": mi.DType, "group_size": mi.GroupSize, "tokenizer": mi.Tokenizer,
		"config": map[string]any{
			"dim": c.Dim, "hidden_dim": c.HiddenDim, "n_layers": c.NLayers, "n_heads": c.NHeads,
			"n_kv_heads": c.NKVHeads, "head_dim": c.HeadSize(), "vocab_size": c.VocabSize, "seq_len": c.SeqLen,
			"norm_eps": c.NormEps, "rope_theta": c.RopeTheta,
		},
	}
}

func start(args []js.Value) (any, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, fmt.Errorf("%w: start(model, prompt [, options]) takes 2 or 3 arguments, got %d", errArg, len(args))
	}
	model, err := str(args, 0, "model")
	if err != nil {
		return nil, err
	}
	prompt, err := str(args, 1, "prompt")
	if err != nil {
		return nil, err
	}
	o := engine.DefaultOptions()
	if len(args) == 3 {
		if err := options(args[2], &o); err != nil {
			return nil, err
		}
	}
	s, err := eng.Start(model, prompt, o)
	if err != nil {
		return nil, err
	}
	return s.ID(), nil
}

// options reads {temperature, topp, seed, steps}; missing keys keep
// llama2.c's defaults and unknown keys are errors (a typo must not silently
// fall back to a default).
func options(v js.Value, o *engine.Options) error {
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
		if f.Type() != js.TypeNumber {
			return fmt.Errorf("%w: option %s must be a number, got %s", errArg, k, f.Type())
		}
		x := f.Float()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%w: option %s must be finite, got %v", errArg, k, x)
		}
		switch k {
		case "temperature":
			o.Temperature = float32(x)
		case "topp":
			o.TopP = float32(x)
		case "seed", "steps":
			if x != math.Trunc(x) || math.Abs(x) > engine.MaxSeed {
				return fmt.Errorf("%w: option %s must be an integer of at most 2^53-1, got %v", errArg, k, x)
			}
			if k == "seed" {
				o.Seed = int64(x)
			} else {
				o.Steps = int(min(x, math.MaxInt32))
			}
		default:
			return fmt.Errorf("%w: unknown option %q (known: temperature, topp, seed, steps)", errArg, k)
		}
	}
	return nil
}

func next(args []js.Value) (any, error) {
	id, err := sessionID(args)
	if err != nil {
		return nil, err
	}
	st, err := eng.Next(id)
	if err != nil {
		return nil, err
	}
	r := js.Global().Get("Object").New()
	r.Set("token", st.Token)
	r.Set("text", st.Text)
	r.Set("done", st.Done)
	r.Set("reason", string(st.Reason))
	return r, nil
}

func stop(args []js.Value) (any, error) {
	id, err := sessionID(args)
	if err != nil {
		return nil, err
	}
	return eng.Stop(id), nil
}

func session(args []js.Value) (any, error) {
	id, err := sessionID(args)
	if err != nil {
		return nil, err
	}
	s, err := eng.Session(id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": s.ID(), "model": s.Model(), "seed": s.Seed(), "steps": s.Steps(),
		"prompt_tokens": s.PromptTokens(), "pos": s.Pos()}, nil
}

func sessionID(args []js.Value) (int, error) {
	if len(args) != 1 || args[0].Type() != js.TypeNumber {
		return 0, fmt.Errorf("%w: expected one session id (a number)", errArg)
	}
	x := args[0].Float()
	if x != math.Trunc(x) || x < 0 || x > math.MaxInt32 {
		return 0, fmt.Errorf("%w: session id %v is not a valid id", errArg, x)
	}
	return int(x), nil
}

func str(args []js.Value, i int, what string) (string, error) {
	if i >= len(args) || args[i].Type() != js.TypeString {
		t := "nothing"
		if i < len(args) {
			t = args[i].Type().String()
		}
		return "", fmt.Errorf("%w: %s must be a string, got %s", errArg, what, t)
	}
	return args[i].String(), nil
}

// byteArg copies a Uint8Array, an ArrayBuffer or any ArrayBuffer view into Go.
func byteArg(v js.Value, what string) ([]byte, error) {
	v, err := byteView(v, what)
	if err != nil {
		return nil, err
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// jsReader reads a JavaScript Uint8Array piece by piece, so that a model is
// read straight into its final Go slices instead of being copied whole first.
type jsReader struct {
	v      js.Value // Uint8Array
	off, n int
}

func (r *jsReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.off)
	c := js.CopyBytesToGo(p[:k], r.v.Call("subarray", r.off, r.off+k))
	r.off += c
	return c, nil
}

// byteView returns v as a Uint8Array (a view, nothing copied).
func byteView(v js.Value, what string) (js.Value, error) {
	g := js.Global()
	u8 := g.Get("Uint8Array")
	switch {
	case v.InstanceOf(u8):
	case v.InstanceOf(g.Get("ArrayBuffer")):
		v = u8.New(v)
	case v.Type() == js.TypeObject && g.Get("ArrayBuffer").Call("isView", v).Bool():
		v = u8.New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength"))
	default:
		return js.Value{}, fmt.Errorf("%w: %s must be a Uint8Array or an ArrayBuffer, got %s", errArg, what, v.Type())
	}
	return v, nil
}
