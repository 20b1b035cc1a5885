//go:build js && wasm

package ui

import (
	"fmt"
	"syscall/js"
	"time"

	"github.com/vugu/vugu"
	"github.com/vugu/vugu/domrender"
	vjs "github.com/vugu/vugu/js"
)

// Run mounts Root on #app and renders until the page goes away. The page
// glue (web/static/page.js) must have defined globalThis.motePage: its
// send(msg) posts to the worker and listen(fn) delivers the worker's
// messages (and the page's own: catalog, files) to fn, in order.
func Run() {
	page := js.Global().Get("motePage")
	if !page.Truthy() {
		js.Global().Get("console").Call("error", "mote: motePage is missing (load page.js)")
		return
	}
	renderer, err := domrender.New("#app")
	if err != nil {
		js.Global().Get("console").Call("error", "mote: "+err.Error())
		return
	}
	defer renderer.Release()
	env := renderer.EventEnv()
	buildEnv, err := vugu.NewBuildEnv(env)
	if err != nil {
		js.Global().Get("console").Call("error", "mote: "+err.Error())
		return
	}
	root := NewRoot(host{page})

	// Events arrive on the JS thread; they change the state under Vugu's
	// lock and ask for a render. The callback lives as long as the page.
	page.Call("listen", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 {
			return nil
		}
		ev := event(args[0])
		env.Lock()
		root.Handle(ev)
		if ev.Type == "files" {
			root.OnFiles(vjs.Value(args[0].Get("files")), args[0].Get("files").Length())
		}
		env.UnlockRender()
		return nil
	}))

	for ok := true; ok; ok = renderer.EventWait() {
		if err := renderer.Render(buildEnv.RunBuild(root)); err != nil {
			js.Global().Get("console").Call("error", "mote: render: "+err.Error())
		}
	}
}

type host struct{ page js.Value }

func (h host) Post(msg map[string]any) { h.page.Call("send", js.ValueOf(msg)) }

func (h host) LoadFiles(files any) {
	var v js.Value
	switch f := files.(type) {
	case vjs.Value:
		v = js.Value(f)
	case js.Value:
		v = f
	default:
		panic(fmt.Sprintf("ui: LoadFiles(%T)", files))
	}
	msg := js.Global().Get("Object").New()
	msg.Set("type", "load")
	msg.Set("files", v)
	h.page.Call("send", msg)
}

func (host) Now() time.Time { return time.Now() }

// event reads a message object into an Event; missing fields stay zero.
func event(v js.Value) Event {
	str := func(k string) string {
		if f := v.Get(k); f.Type() == js.TypeString {
			return f.String()
		}
		return ""
	}
	num := func(o js.Value, k string) float64 {
		if f := o.Get(k); f.Type() == js.TypeNumber {
			return f.Float()
		}
		return 0
	}
	ev := Event{Type: str("type"), Message: str("message"), Phase: str("phase"), Text: str("text"),
		Reason: str("reason"), Loaded: num(v, "loaded"), Total: num(v, "total"),
		Tokens: int(num(v, "tokens")), MS: num(v, "ms"), Seed: num(v, "seed"),
		Cached: v.Get("cached").Truthy(), Entries: -1}
	if f := v.Get("entries"); f.Type() == js.TypeNumber {
		ev.Entries = f.Int()
	}
	if in := v.Get("info"); in.Type() == js.TypeObject {
		ev.Info = ModelInfo{Format: strOf(in, "format"), DType: strOf(in, "dtype"), Label: strOf(in, "label"),
			Bytes: int64(num(in, "size")), Params: int64(num(in, "params"))}
		if c := in.Get("config"); c.Type() == js.TypeObject {
			ev.Info.Vocab, ev.Info.SeqLen = int(num(c, "vocab_size")), int(num(c, "seq_len"))
		}
	}
	entries := func(k string) []Entry {
		var out []Entry
		if cat := v.Get(k); cat.Type() == js.TypeObject {
			for i := 0; i < cat.Length(); i++ {
				e := cat.Index(i)
				out = append(out, Entry{ID: strOf(e, "id"), Label: strOf(e, "label"), URL: strOf(e, "url"),
					Tokenizer: strOf(e, "tokenizer"), Bytes: int64(num(e, "bytes")), Default: e.Get("default").Truthy()})
			}
		}
		return out
	}
	ev.Catalog, ev.Encoders = entries("models"), entries("encoders")
	if ev.Type == "encoder-loaded" {
		if in := v.Get("info"); in.Type() == js.TypeObject {
			ev.Encoder = EncoderInfo{Label: strOf(in, "label"), Format: strOf(in, "format"), DType: strOf(in, "dtype"),
				Bytes: int64(num(in, "size")), Params: int64(num(in, "params")), Dim: int(num(in, "dim")),
				MaxTokens: int(num(in, "max_tokens"))}
		}
	}
	if ev.Type == "embedded" {
		ev.Kind = str("kind")
		if cs := v.Get("counts"); cs.Type() == js.TypeObject {
			ev.Counts = make([]int, cs.Length())
			for i := range ev.Counts {
				ev.Counts[i] = cs.Index(i).Int()
			}
		}
		if rows := v.Get("cosines"); rows.Type() == js.TypeObject {
			ev.Cos = make([][]float64, rows.Length())
			for i := range ev.Cos {
				r := rows.Index(i)
				ev.Cos[i] = make([]float64, r.Length())
				for j := range ev.Cos[i] {
					ev.Cos[i][j] = r.Index(j).Float()
				}
			}
		}
	}
	return ev
}

func strOf(v js.Value, k string) string {
	if f := v.Get(k); f.Type() == js.TypeString {
		return f.String()
	}
	return ""
}
