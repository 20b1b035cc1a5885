package ui

import (
	"strings"
	"testing"
	"time"
)

// fakeHost records what Root sends to the worker.
type fakeHost struct {
	posts []map[string]any
	files []any
	now   time.Time
}

func (h *fakeHost) Post(m map[string]any) { h.posts = append(h.posts, m) }
func (h *fakeHost) LoadFiles(f any)       { h.files = append(h.files, f) }
func (h *fakeHost) Now() time.Time        { return h.now }

func (h *fakeHost) last(t *testing.T) map[string]any {
	t.Helper()
	if len(h.posts) == 0 {
		t.Fatal("nothing posted")
	}
	return h.posts[len(h.posts)-1]
}

var catalog = []Entry{
	{ID: "stories260K", Label: "stories260K fp32 (exact)", URL: "models/stories260K.mote?v=1", Bytes: 968346, Default: true},
	{ID: "stories260K-q8", Label: "stories260K q8", URL: "models/stories260K-q8.mote?v=2", Bytes: 400000},
}

// loaded brings a Root to "default model loaded".
func loaded(t *testing.T) (*Root, *fakeHost) {
	h := &fakeHost{now: time.Unix(100, 0)}
	c := NewRoot(h)
	if c.CanGenerate() {
		t.Fatal("can generate before any model")
	}
	c.Handle(Event{Type: "catalog", Catalog: catalog})
	if p := h.last(t); p["type"] != "load" || p["url"] != "models/stories260K.mote?v=1" || c.Picked != "stories260K" {
		t.Fatalf("the default model is not loaded first: %v, picked %q", p, c.Picked)
	}
	c.Handle(Event{Type: "ready", Message: "mote test", Entries: 0})
	if c.CanGenerate() || c.CanLoad() {
		t.Fatal("generate or load allowed while loading")
	}
	c.Handle(Event{Type: "progress", Phase: "download", Loaded: 484173, Total: 968346})
	if c.Progress != 50 || !strings.Contains(c.ProgressText, "0.5 MB of 1.0 MB") {
		t.Errorf("progress %v %q", c.Progress, c.ProgressText)
	}
	c.Handle(Event{Type: "loaded", Info: ModelInfo{Label: "stories260K fp32 (exact)", Format: "mote", DType: "f32", Bytes: 968346, Params: 292800}, MS: 12, Entries: 1})
	if !c.CanGenerate() || c.Progress != 100 || c.Loads != 1 {
		t.Fatalf("after loaded: can generate %v, progress %v, loads %d", c.CanGenerate(), c.Progress, c.Loads)
	}
	return c, h
}

func TestGenerateStreamStop(t *testing.T) {
	c, h := loaded(t)
	c.Output = "old text"
	c.Temperature, c.Seed = "0", ""
	c.OnGenerate()
	p := h.last(t)
	o := p["opts"].(map[string]any)
	if p["type"] != "generate" || p["prompt"] != DefaultPrompt || o["temperature"] != 0.0 || o["topp"] != 0.9 || o["steps"] != 256.0 {
		t.Fatalf("generate message %v", p)
	}
	if _, ok := o["seed"]; ok {
		t.Error("an empty seed must leave the seed to the engine")
	}
	if c.Output != "" || c.CanGenerate() || !c.Generating || c.RunState() != "generating" {
		t.Fatalf("Generate did not clear the output at once or did not block a second start: %q", c.Output)
	}
	h.now = h.now.Add(25 * time.Millisecond)
	c.Handle(Event{Type: "tokens", Text: "Once upon", Tokens: 1})
	c.Handle(Event{Type: "tokens", Text: " a time", Tokens: 11, MS: 20})
	if c.Output != "Once upon a time" || c.TTFTMillis() != 25 || c.TokPerSec() != 500 {
		t.Errorf("output %q, ttft %v, tok/s %v", c.Output, c.TTFTMillis(), c.TokPerSec())
	}
	c.OnStop()
	c.OnStop() // a second press sends nothing more
	if n := len(h.posts); h.posts[n-1]["type"] != "stop" || h.posts[n-2]["type"] != "generate" {
		t.Errorf("stop messages: %v", h.posts)
	}
	c.Handle(Event{Type: "done", Reason: "stopped", Tokens: 11, MS: 20, Seed: 77})
	if !c.CanGenerate() || c.RunState() != "stopped" || c.Runs != 1 {
		t.Errorf("after stop: can generate %v, state %q, runs %d", c.CanGenerate(), c.RunState(), c.Runs)
	}
	st := c.Status()
	for _, want := range []string{"stories260K fp32 (exact)", "968.3 kB", "293K parameters", "first token 25 ms", "11 tokens", "500 tok/s", "stopped"} {
		if !strings.Contains(st, want) {
			t.Errorf("status %q lacks %q", st, want)
		}
	}
	if strings.Contains(st, "seed") {
		t.Errorf("status %q shows the seed of a greedy run", st)
	}
	// late tokens of an ended run are ignored
	c.Handle(Event{Type: "tokens", Text: "late"})
	if c.Output != "Once upon a time" {
		t.Errorf("late tokens appended: %q", c.Output)
	}
}

func TestOptions(t *testing.T) {
	o, err := Options(" 1 ", "0.9", "42", "300")
	if err != nil || o["temperature"] != 1.0 || o["topp"] != 0.9 || o["seed"] != 42.0 || o["steps"] != 300.0 {
		t.Fatalf("%v %v", o, err)
	}
	for _, bad := range [][4]string{
		{"", "0.9", "", "256"}, {"-1", "0.9", "", "256"}, {"101", "0.9", "", "256"}, {"NaN", "0.9", "", "256"},
		{"1", "1.5", "", "256"}, {"1", "x", "", "256"},
		{"1", "0.9", "0", "256"}, {"1", "0.9", "1.5", "256"}, {"1", "0.9", "9007199254740992", "256"},
		{"1", "0.9", "", "0"}, {"1", "0.9", "", "ten"},
	} {
		if _, err := Options(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("Options%q accepted", bad)
		}
	}
	c, h := loaded(t)
	c.Temperature = "hot"
	n := len(h.posts)
	c.OnGenerate()
	if len(h.posts) != n || c.Generating || !strings.HasPrefix(c.Err, "Temperature must be a number") {
		t.Errorf("a bad temperature started a run or gave %q", c.Err)
	}
}

func TestLoadErrorKeepsModel(t *testing.T) {
	c, h := loaded(t)
	c.OnPick("stories260K-q8")
	if p := h.last(t); p["url"] != "models/stories260K-q8.mote?v=2" || c.Picked != "stories260K-q8" || !c.Loading {
		t.Fatalf("pick: %v", p)
	}
	c.Handle(Event{Type: "load-error", Message: "it is not a model file mote can read (bad magic)."})
	if c.Picked != "stories260K" || c.Loading || !c.CanGenerate() || c.Loads != 2 {
		t.Errorf("after a failed load: picked %q, loading %v", c.Picked, c.Loading)
	}
	if want := "Could not load stories260K q8: it is not a model file mote can read (bad magic). The page keeps using stories260K fp32 (exact)."; c.Err != want {
		t.Errorf("error %q\nwant  %q", c.Err, want)
	}

	c.URL = "  "
	c.OnLoadURL()
	if !strings.Contains(c.Err, "Type a model's URL") || c.Loading {
		t.Errorf("empty URL: %q", c.Err)
	}
	c.URL = "fixtures/a/b.mote"
	c.OnLoadURL()
	if p := h.last(t); p["url"] != "fixtures/a/b.mote" || p["label"] != "b.mote" || c.Picked != "" {
		t.Errorf("url load %v", p)
	}
	c.Handle(Event{Type: "loaded", Info: ModelInfo{Label: "b.mote"}})
	c.OnFiles("files", 3)
	if len(h.files) != 0 || !strings.Contains(c.Err, "got 3 files") {
		t.Errorf("3 files: %q", c.Err)
	}
	c.OnFiles("files", 2)
	if len(h.files) != 1 || !c.Loading {
		t.Error("2 files not sent")
	}
	c.OnGenerate()
	if c.Generating {
		t.Error("generation started during a load")
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{12: "12 bytes", 1500: "1.5 kB", 968346: "968.3 kB", 15_000_000: "15.00 MB", 2_500_000_000: "2.50 GB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{999: "999", 292800: "293K", 15_200_000: "15.2M"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := EntryText(catalog[0]); got != "stories260K fp32 (exact) · 968.3 kB" {
		t.Errorf("EntryText = %q", got)
	}
}
