//go:build js && wasm

// Command worker is mote's Cloudflare Worker build (GOOS=js GOARCH=wasm,
// dist/edge/app.wasm): it serves edge.Server through
// github.com/syumai/workers and stays resident. The glue (edge/glue/worker.mjs)
// starts it once per isolate, on the first request, and hands it the model
// bytes through the functions registered here.
//
// Why not syumai/workers' Serve and generated glue: they start a new Go
// instance for every request and end it after the response, so the model
// would load on every request. ServeNonBlock + Ready registers the handler
// and returns; main then blocks for good, and the glue calls the registered
// handleRequest for each request with one permanent runtime context object.
//
// Model loading (all synchronous, no goroutine; errors come back as JS Error
// objects, which the glue throws):
//
//	context.binding.modelBegin(size)              reserve size bytes
//	context.binding.modelPart(uint8Array)         append a part (any number)
//	context.binding.modelEnd(name, tokenizer?)    load what was appended
//	context.binding.modelFail(message)            a fetch failed: record it for /healthz
//
// and the same four for the sentence encoder of POST /v1/embeddings
// (encoderBegin, encoderPart, encoderEnd(name), encoderFail), with a buffer
// of their own, so that a model and an encoder may load at the same time.
//
// so the glue can stream a model from static assets or R2 chunk by chunk
// without holding it whole in JavaScript.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall/js"

	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"

	"mote/edge"
)

const (
	// maxModelBytes bounds modelBegin: far above what fits in an isolate's
	// 128 MB, well below wasm32's 4 GiB.
	maxModelBytes = 1 << 30
	// defaultMemoryLimit keeps Go's heap under the 128 MB isolate limit
	// with room for JavaScript's (wasm memory never shrinks; measured in
	// TOOLCHAIN.md: without a limit a 100 MB model grew to 204 MiB).
	defaultMemoryLimit = 110 << 20
	envMemoryLimit     = "MOTE_GO_MEMORY_LIMIT_MB"
	envTestCrash       = "MOTE_TEST_CRASH_PATH"
)

func main() {
	context := js.Global().Get("context")
	var srv *edge.Server
	cfg, err := edge.ConfigFromEnv(getenv)
	if err != nil {
		srv = edge.Broken(err)
	} else {
		srv = edge.New(cfg)
	}
	limit := int64(defaultMemoryLimit)
	if s := getenv(envMemoryLimit); s != "" {
		if mb, err := strconv.Atoi(s); err == nil && mb > 0 && mb < 4096 {
			limit = int64(mb) << 20
		}
	}
	debug.SetMemoryLimit(limit)

	srv.HealthExtra = func(h map[string]any) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h["go_instances"] = context.Get("instances").Int()
		h["go_heap_bytes"] = ms.HeapAlloc
		h["go_sys_bytes"] = ms.Sys
		h["go_memory_limit"] = limit
		// the wasm memory (Go's heap and everything else of the
		// instance), which the glue exposes: it only grows
		if m := context.Get("memory"); m.Truthy() {
			h["wasm_memory_bytes"] = m.Get("buffer").Get("byteLength").Int()
		}
	}
	var handler http.Handler = srv
	if p := getenv(envTestCrash); p != "" {
		handler = crashAt(p, srv)
	}

	b := context.Get("binding")
	ld := &loader{srv: srv, load: loadModel}
	ld.register(b, "model")
	enc := &loader{srv: srv, load: loadEncoder}
	enc.register(b, "encoder")

	workers.ServeNonBlock(handler)
	workers.Ready()
	select {}
}

// getenv reads a text binding of the Worker's env; anything else (unset,
// null as workerd gives for an unset fromEnvironment, a service binding)
// reads as "".
func getenv(name string) string {
	v := cloudflare.GetBinding(name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// crashAt ends the Go program on a request to path, to test the glue's
// recovery; only for test configurations (MOTE_TEST_CRASH_PATH).
func crashAt(path string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			go func() { panic("mote: crash requested by " + envTestCrash) }()
			select {}
		}
		next.ServeHTTP(w, r)
	})
}

// fn wraps a Go function as a JS function that returns an Error object on
// failure or panic (a Go function called from JS cannot throw).
func fn(f func([]js.Value) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (res any) {
		defer func() {
			if p := recover(); p != nil {
				res = js.Global().Get("Error").New(fmt.Sprintf("mote: internal error: %v", p))
			}
		}()
		v, err := f(args)
		if err != nil {
			return js.Global().Get("Error").New(err.Error())
		}
		return v
	})
}

// loader collects a model's bytes from JavaScript, then loads them.
type loader struct {
	srv  *edge.Server
	load func(srv *edge.Server, name string, data []byte, args []js.Value) (any, error)
	buf  []byte
	size int
}

// register sets prefix+"Begin", "Part", "End" and "Fail" on the binding.
func (l *loader) register(b js.Value, prefix string) {
	b.Set(prefix+"Begin", fn(l.begin))
	b.Set(prefix+"Part", fn(l.part))
	b.Set(prefix+"End", fn(l.end))
	b.Set(prefix+"Fail", fn(func(args []js.Value) (any, error) {
		l.buf = nil
		if len(args) == 1 && args[0].Type() == js.TypeString {
			l.srv.LoadFailed(errors.New(args[0].String()))
		}
		return nil, nil
	}))
}

var errArgs = errors.New("mote: bad arguments")

func (l *loader) begin(args []js.Value) (any, error) {
	if len(args) != 1 || args[0].Type() != js.TypeNumber {
		return nil, fmt.Errorf("%w: begin(size)", errArgs)
	}
	n := args[0].Float()
	if !(n >= 1 && n <= maxModelBytes) {
		return nil, fmt.Errorf("%w: model size %v outside 1..%d", errArgs, n, maxModelBytes)
	}
	l.size = int(n)
	l.buf = make([]byte, 0, l.size)
	return nil, nil
}

func (l *loader) part(args []js.Value) (any, error) {
	if len(args) != 1 || !args[0].InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, fmt.Errorf("%w: part(uint8Array)", errArgs)
	}
	n := args[0].Length()
	if l.buf == nil || len(l.buf)+n > l.size {
		return nil, fmt.Errorf("%w: part: %d more bytes than the %d announced", errArgs, len(l.buf)+n-l.size, l.size)
	}
	at := len(l.buf)
	l.buf = l.buf[:at+n]
	js.CopyBytesToGo(l.buf[at:], args[0])
	return nil, nil
}

func (l *loader) end(args []js.Value) (any, error) {
	if len(args) < 1 || args[0].Type() != js.TypeString {
		return nil, fmt.Errorf("%w: end(name, ...)", errArgs)
	}
	data := l.buf
	l.buf = nil
	if len(data) != l.size {
		return nil, fmt.Errorf("%w: end: got %d of %d bytes", errArgs, len(data), l.size)
	}
	r, err := l.load(l.srv, args[0].String(), data, args[1:])
	data = nil
	runtime.GC() // the file's bytes are garbage now; give their pages back to the heap
	return r, err
}

// loadModel loads a language model: modelEnd(name, tokenizer?).
func loadModel(srv *edge.Server, name string, data []byte, args []js.Value) (any, error) {
	var tok []byte
	if len(args) > 0 && args[0].InstanceOf(js.Global().Get("Uint8Array")) {
		tok = make([]byte, args[0].Length())
		js.CopyBytesToGo(tok, args[0])
	}
	mi, err := srv.Load(name, data, tok)
	if err != nil {
		return nil, err
	}
	return map[string]any{"name": mi.Name, "params": mi.Params, "dtype": mi.DType, "seq_len": mi.Config.SeqLen}, nil
}

// loadEncoder loads a sentence encoder: encoderEnd(name).
func loadEncoder(srv *edge.Server, name string, data []byte, _ []js.Value) (any, error) {
	ei, err := srv.LoadEncoder(name, data)
	if err != nil {
		return nil, err
	}
	return map[string]any{"name": ei.Name, "params": ei.Params, "dtype": ei.DType, "dim": ei.Dim, "max_tokens": ei.MaxTokens}, nil
}
