package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Host is what Root needs from the page: the Web Worker and the clock.
// bridge_js.go implements it in the browser; tests use a fake.
type Host interface {
	// Post sends a message to the worker (web/static/worker.js documents
	// the protocol). Values are strings, float64s, bools and nested maps.
	Post(msg map[string]any)
	// LoadFiles sends the worker a JS FileList (from #model-file or a drop)
	// to load as the model (and its tokenizer, when two files are given).
	LoadFiles(files any)
	// Now is the time, for time to first token.
	Now() time.Time
}

// Entry is one model of the page's catalogue, dist/web/models.json
// (written by build.sh).
type Entry struct {
	ID        string // the picker's value
	Label     string // e.g. "stories260K fp32 (exact)"
	URL       string // relative to the page
	Tokenizer string // a separate tokenizer's URL, or ""
	Bytes     int64  // file size, for the picker
	Default   bool   // preselected and loaded at start
}

// Event is a message from the worker (or the page glue) to the UI.
type Event struct {
	Type    string // ready, catalog, progress, loaded, load-error, tokens, done, gen-error, cache, fatal (files is the bridge's); embeddings: embed.go
	Message string // errors; the engine version for ready
	Phase   string // progress: download, decompress, read
	Loaded  float64
	Total   float64 // progress; 0: unknown
	Text    string  // tokens
	Tokens  int     // tokens, done: tokens so far
	MS      float64 // tokens, done: ms since the first token; loaded: load time
	Reason  string  // done: length, end, stopped
	Seed    float64 // done: the seed used
	Cached  bool    // loaded: the bytes came from the Cache API
	Info    ModelInfo
	Catalog []Entry
	Entries int // cache: models cached

	Encoders []Entry     // catalog: the sentence encoders
	Encoder  EncoderInfo // encoder-loaded
	Kind     string      // embedded: matrix or search
	Cos      [][]float64 // embedded: matrix (n, n), or search (1, items)
	Counts   []int       // embedded: tokens per text
}

// ModelInfo describes the model the worker holds (mote.load's info).
type ModelInfo struct {
	Label  string // what the visitor picked or the file name
	Format string
	DType  string
	Bytes  int64
	Params int64
	Vocab  int
	SeqLen int
}

// Defaults of the controls: `mote run`'s (llama2.c's) -t 1 -p 0.9 -n 256.
const (
	DefaultPrompt      = "Once upon a time"
	DefaultTemperature = "1"
	DefaultTopP        = "0.9"
	DefaultMaxTokens   = "256"
	maxSeed            = 1<<53 - 1 // engine.MaxSeed
	maxTemperature     = 100       // engine's bound
)

// Root is the page: model picker, controls, prompt, output, status.
type Root struct {
	Host Host

	Catalog []Entry
	Picked  string // picker value: a catalogue ID, or "" for a file or URL

	Prompt, Temperature, TopP, Seed, MaxTokens string // the inputs, as typed
	URL                                        string // #model-url

	WorkerUp   bool
	Loading    bool
	Generating bool
	Stopping   bool

	Progress     float64 // 0..100
	ProgressText string
	Err          string
	Output       string

	Model    *ModelInfo // the model the worker holds; nil until one loaded
	loadWhat string     // what is being loaded, for messages
	previous string     // Picked before the load that is running

	t0      time.Time     // Generate pressed
	ttft    time.Duration // Generate pressed to first text, -1 until then
	run     Event         // latest tokens or done event of this generation
	version string
	cached  int // models in the cache, -1 unknown
	note    string
	sampled bool // the last generation sampled (temperature > 0): its seed matters

	// Loads and Runs count finished loads (loaded or failed) and finished
	// generations: #status shows them as data-loads and data-runs, so that
	// tests and benchmarks can wait for "the next one" without races.
	Loads, Runs int

	Emb Embed // the embeddings view (embed.go)
}

// NewRoot returns the page in its initial state.
func NewRoot(h Host) *Root {
	return &Root{Host: h, Prompt: DefaultPrompt, Temperature: DefaultTemperature, TopP: DefaultTopP,
		MaxTokens: DefaultMaxTokens, ttft: -1, cached: -1,
		Emb: Embed{Sentences: DefaultSentences, Items: DefaultItems, Query: DefaultQuery}}
}

// CanGenerate: a model is loaded and nothing else runs.
func (c *Root) CanGenerate() bool {
	return c.WorkerUp && c.Model != nil && !c.Loading && !c.Generating && !c.Emb.Loading && !c.Emb.Busy
}

// CanLoad: no load or generation is running.
// (The worker queues messages until it is up, so a load may be sent early.)
func (c *Root) CanLoad() bool { return !c.Loading && !c.Generating && !c.Emb.Loading && !c.Emb.Busy }

// Options parses the sampling controls into the engine's start options
// ({temperature, topp, seed, steps}), or says in plain words what is wrong.
func Options(temperature, topP, seed, maxTokens string) (map[string]any, error) {
	t, err := number(temperature, "Temperature", 0, maxTemperature)
	if err != nil {
		return nil, err
	}
	p, err := number(topP, "Top-p", 0, 1)
	if err != nil {
		return nil, err
	}
	o := map[string]any{"temperature": t, "topp": p}
	if s := strings.TrimSpace(seed); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > maxSeed {
			return nil, fmt.Errorf("Seed must be a whole number from 1 to %d, or empty for a random seed; got %q.", int64(maxSeed), s)
		}
		o["seed"] = float64(n)
	}
	s := strings.TrimSpace(maxTokens)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1<<20 {
		return nil, fmt.Errorf("Max tokens must be a whole number of at least 1 (it counts the prompt, as `mote run -n` does); got %q.", s)
	}
	o["steps"] = float64(n)
	return o, nil
}

func number(s, what string, lo, hi float64) (float64, error) {
	s = strings.TrimSpace(s)
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || x < lo || x > hi {
		return 0, fmt.Errorf("%s must be a number from %g to %g; got %q.", what, lo, hi, s)
	}
	return x, nil
}

// OnGenerate clears the output at once and starts a generation.
func (c *Root) OnGenerate() {
	if !c.CanGenerate() {
		return
	}
	o, err := Options(c.Temperature, c.TopP, c.Seed, c.MaxTokens)
	if err != nil {
		c.Err = err.Error()
		return
	}
	c.Err, c.Output, c.note = "", "", ""
	c.Generating, c.Stopping = true, false
	c.t0, c.ttft, c.run = c.Host.Now(), -1, Event{}
	c.sampled = o["temperature"].(float64) > 0
	c.Host.Post(map[string]any{"type": "generate", "prompt": c.Prompt, "opts": o})
}

// OnStop asks the worker to end the generation; it stops within one token.
func (c *Root) OnStop() {
	if !c.Generating || c.Stopping {
		return
	}
	c.Stopping = true
	c.Host.Post(map[string]any{"type": "stop"})
}

// OnPick loads the catalogue model with the given picker value.
func (c *Root) OnPick(id string) {
	for _, e := range c.Catalog {
		if e.ID == id {
			c.loadEntry(e)
			return
		}
	}
}

func (c *Root) loadEntry(e Entry) {
	if !c.startLoad(e.Label, e.ID) {
		return
	}
	c.Host.Post(map[string]any{"type": "load", "label": e.Label, "url": e.URL, "tokenizer": e.Tokenizer, "size": float64(e.Bytes)})
}

// OnLoadURL loads the model at #model-url.
func (c *Root) OnLoadURL() {
	u := strings.TrimSpace(c.URL)
	if u == "" {
		c.Err = "Type a model's URL first (for example models/stories260K.mote)."
		return
	}
	if !c.startLoad(u, "") {
		return
	}
	c.Host.Post(map[string]any{"type": "load", "label": u[strings.LastIndex(u, "/")+1:], "url": u})
}

// OnFiles loads the files chosen in #model-file or dropped on the page.
// count is the number of files.
func (c *Root) OnFiles(files any, count int) {
	if count == 0 {
		return
	}
	if count > 2 {
		c.Err = fmt.Sprintf("Choose one model file, or a model and its tokenizer (2 files); got %d files.", count)
		return
	}
	if !c.startLoad("the chosen file", "") {
		return
	}
	c.Host.LoadFiles(files)
}

// startLoad prepares a load; it refuses while another load or a
// generation runs (the worker does one thing at a time).
func (c *Root) startLoad(what, pick string) bool {
	if !c.CanLoad() {
		if c.Generating {
			c.Err = "Stop the generation before loading another model."
		}
		return false
	}
	c.Err, c.note = "", ""
	c.Loading, c.loadWhat = true, what
	c.previous, c.Picked = c.Picked, pick
	c.Progress, c.ProgressText = 0, "starting"
	return true
}

// OnClearCache empties the page's model cache.
func (c *Root) OnClearCache() {
	c.Host.Post(map[string]any{"type": "clear-cache"})
}

// Handle applies an event from the worker or the page glue.
func (c *Root) Handle(ev Event) {
	if c.handleEmbed(ev) {
		return
	}
	switch ev.Type {
	case "ready":
		c.WorkerUp, c.version = true, ev.Message
		c.Entries(ev.Entries)
	case "catalog":
		c.Catalog = ev.Catalog
		c.Emb.Encoders = ev.Encoders
		if c.Model == nil && !c.Loading {
			for _, e := range c.Catalog {
				if e.Default {
					c.loadEntry(e)
					break
				}
			}
		}
	case "progress":
		c.Progress, c.ProgressText = progress(ev)
	case "loaded":
		c.Loads++
		c.Loading, c.Err = false, ""
		m := ev.Info
		c.Model = &m
		c.Progress = 100
		c.ProgressText = fmt.Sprintf("loaded in %.0f ms", ev.MS)
		if ev.Cached {
			c.ProgressText += " from the page's cache"
		}
		c.Entries(ev.Entries)
	case "load-error":
		c.Loads++
		c.Loading = false
		c.Picked = c.previous
		c.Progress, c.ProgressText = 0, "not loaded"
		c.Err = fmt.Sprintf("Could not load %s: %s", c.loadWhat, ev.Message)
		if c.Model != nil {
			c.Err += fmt.Sprintf(" The page keeps using %s.", c.Model.Label)
		}
	case "tokens":
		if !c.Generating {
			return
		}
		if c.ttft < 0 {
			c.ttft = c.Host.Now().Sub(c.t0)
		}
		c.Output += ev.Text
		c.run = ev
	case "done":
		if !c.Generating {
			return
		}
		c.Generating, c.Stopping = false, false
		c.run = ev
		c.Runs++
	case "gen-error":
		c.Runs++
		c.Generating, c.Stopping = false, false
		c.Err = "Generation failed: " + ev.Message
	case "cache":
		c.Entries(ev.Entries)
		c.note = ev.Message
	case "fatal":
		if c.Loading {
			c.Loads++
		}
		if c.Generating {
			c.Runs++
		}
		if c.Emb.Loading {
			c.Emb.Loads++
		}
		if c.Emb.Busy {
			c.Emb.Runs++
		}
		c.Loading, c.Generating, c.Stopping = false, false, false
		c.Emb.Loading, c.Emb.Busy, c.Emb.pending = false, false, ""
		c.Err = ev.Message
	}
}

// Entries records how many models the cache holds (-1: unknown).
func (c *Root) Entries(n int) {
	if n >= 0 {
		c.cached = n
	}
}

func progress(ev Event) (float64, string) {
	mb := func(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }
	switch ev.Phase {
	case "download", "decompress":
		verb := "downloading"
		if ev.Phase == "decompress" {
			verb = "downloading and decompressing"
		}
		if ev.Total > 0 {
			p := min(100, 100*ev.Loaded/ev.Total)
			return p, fmt.Sprintf("%s %s of %s", verb, mb(ev.Loaded), mb(ev.Total))
		}
		return 0, fmt.Sprintf("%s %s", verb, mb(ev.Loaded))
	case "read":
		return 100, "reading the model"
	}
	return 0, ev.Phase
}

// ProgressValue is #progress's value attribute.
func (c *Root) ProgressValue() string { return strconv.FormatFloat(c.Progress, 'f', 0, 64) }

// Status is the live status line: model, size, speed, time to first token.
func (c *Root) Status() string {
	var b strings.Builder
	switch {
	case c.Model == nil && c.Loading:
		b.WriteString("Loading " + c.loadWhat + "…")
	case c.Model == nil && !c.WorkerUp:
		b.WriteString("Starting…")
	case c.Model == nil:
		b.WriteString("No model loaded.")
	default:
		m := c.Model
		fmt.Fprintf(&b, "%s · %s %s · %s", m.Label, m.Format, m.DType, Size(m.Bytes))
		if m.Params > 0 {
			fmt.Fprintf(&b, " · %s parameters", Count(m.Params))
		}
	}
	if c.ttft >= 0 {
		fmt.Fprintf(&b, " · first token %d ms", c.ttft.Milliseconds())
	}
	if c.run.Tokens > 0 {
		fmt.Fprintf(&b, " · %d tokens", c.run.Tokens)
		if tps := c.TokPerSec(); tps > 0 {
			fmt.Fprintf(&b, " · %.0f tok/s", tps)
		}
	}
	switch {
	case c.Stopping:
		b.WriteString(" · stopping")
	case c.Generating:
		b.WriteString(" · generating")
	case c.run.Type == "done":
		b.WriteString(" · " + reasonText(c.run.Reason))
		if c.sampled && c.run.Seed > 0 {
			fmt.Fprintf(&b, " (seed %.0f)", c.run.Seed)
		}
	}
	if c.note != "" {
		b.WriteString(" · " + c.note)
	}
	return b.String()
}

// TokPerSec is the generation speed measured in the worker: tokens after
// the first over the time since the first (llama2.c's measure).
func (c *Root) TokPerSec() float64 {
	if c.run.Tokens < 2 || c.run.MS <= 0 {
		return 0
	}
	return float64(c.run.Tokens-1) / (c.run.MS / 1000)
}

// TTFTMillis is the time from Generate to the first text, -1 before it.
func (c *Root) TTFTMillis() float64 {
	if c.ttft < 0 {
		return -1
	}
	return float64(c.ttft.Microseconds()) / 1000
}

// RunState is #status's data-state: idle, loading, generating, or the
// last generation's end reason (length, end, stopped).
func (c *Root) RunState() string {
	switch {
	case c.Loading:
		return "loading"
	case c.Generating:
		return "generating"
	case c.run.Type == "done":
		return c.run.Reason
	}
	return "idle"
}

// CacheText labels the clear-cache button.
func (c *Root) CacheText() string {
	if c.cached < 0 {
		return "Clear cached models"
	}
	return fmt.Sprintf("Clear cached models (%d)", c.cached)
}

func reasonText(r string) string {
	switch r {
	case "length":
		return "reached max tokens"
	case "end":
		return "the story ended"
	case "stopped":
		return "stopped"
	}
	return r
}

// EntryText is a picker option's text: label and size.
func EntryText(e Entry) string {
	if e.Bytes > 0 {
		return e.Label + " · " + Size(e.Bytes)
	}
	return e.Label
}

// Size formats a byte count for people.
func Size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Count formats a parameter count (260K, 15.2M).
func Count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}
