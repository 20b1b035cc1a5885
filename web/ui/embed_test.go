package ui

import (
	"reflect"
	"strings"
	"testing"
)

var encoders = []Entry{{ID: "minilm", Label: "all-MiniLM-L6-v2", URL: "models/minilm.mote?v=3", Bytes: 16_601_444, Default: true}}

func TestLines(t *testing.T) {
	got, err := Lines("\r\n  a cat \r\nb dog\n\n", "sentence", 2, 3)
	if err != nil || !reflect.DeepEqual(got, []string{"a cat", "b dog"}) {
		t.Fatalf("Lines = %q, %v", got, err)
	}
	long := strings.Repeat("é", MaxLineChars) // 2 bytes a character: characters are counted
	if _, err := Lines("x\n"+long, "item", 1, 5); err != nil {
		t.Errorf("a line of exactly %d characters: %v", MaxLineChars, err)
	}
	for _, c := range []struct{ text, want string }{
		{"", "Write at least 2 sentences, one per line."},
		{" \n\t\n", "Write at least 2 sentences, one per line."},
		{"one", "Write at least 2 sentences, one per line; got 1."},
		{"a\n \nc", "Line 2 is empty: write one sentence per line, without empty lines."},
		{"a\nb\nc\nd", "4 lines are more than this page takes at once: at most 3 sentences, one per line."},
		{"a\n" + long + "é", "Line 2 has 2001 characters, more than the 2000 this page takes a line."},
		{"a\n\xff", "Line 2 is not valid text (UTF-8)."},
	} {
		if _, err := Lines(c.text, "sentence", 2, 3); err == nil || err.Error() != c.want {
			t.Errorf("Lines(%q): %v, want %q", c.text, err, c.want)
		}
	}
}

func TestRank(t *testing.T) {
	r := Rank([]string{"a", "b", "c", "d"}, []float64{0.1, 0.9, 0.1, -0.2}, []int{3, 4, 5, 6})
	var lines []int
	for i, x := range r {
		lines = append(lines, x.Line)
		if x.Rank != i+1 {
			t.Errorf("rank %d at %d", x.Rank, i)
		}
	}
	if !reflect.DeepEqual(lines, []int{2, 1, 3, 4}) || r[0].Text != "b" || r[0].Token != 4 {
		t.Errorf("ranked %+v", r)
	}
}

// embedReady brings a Root to "language model loaded, encoder known".
func embedReady(t *testing.T) (*Root, *fakeHost) {
	c, h := loaded(t)
	c.Handle(Event{Type: "catalog", Catalog: catalog, Encoders: encoders})
	if c.Emb.Encoder != nil || c.EmbState() != "idle" || !strings.Contains(c.EmbStatus(), "16.60 MB") {
		t.Fatalf("state %q, status %q", c.EmbState(), c.EmbStatus())
	}
	return c, h
}

func TestCompareLoadsEncoderThenEmbeds(t *testing.T) {
	c, h := embedReady(t)
	c.Emb.Sentences = "a\nb\nc\n"
	c.OnCompare()
	p := h.last(t)
	if p["type"] != "load-encoder" || p["url"] != "models/minilm.mote?v=3" || !c.Emb.Loading || c.EmbState() != "loading" {
		t.Fatalf("first Compare posted %v", p)
	}
	if c.CanEmbed() || c.CanGenerate() || c.CanLoad() {
		t.Error("the page allows other work while the encoder loads")
	}
	c.Handle(Event{Type: "encoder-progress", Phase: "download", Loaded: 8_300_722, Total: 16_601_444})
	if c.Emb.Progress != 50 || !strings.Contains(c.Emb.ProgressText, "8.3 MB of 16.6 MB") {
		t.Errorf("progress %v %q", c.Emb.Progress, c.Emb.ProgressText)
	}
	n := len(h.posts)
	c.Handle(Event{Type: "encoder-loaded", Encoder: EncoderInfo{Label: "all-MiniLM-L6-v2", Format: "mote", DType: "q8", Bytes: 16_601_444, Dim: 384}, MS: 900, Entries: 2})
	if len(h.posts) != n+1 {
		t.Fatal("the pending Compare was not sent once the encoder loaded")
	}
	p = h.last(t)
	if p["type"] != "embed" || p["kind"] != "matrix" || !reflect.DeepEqual(p["texts"], []any{"a", "b", "c"}) || !c.Emb.Busy || c.Emb.Loads != 1 {
		t.Fatalf("embed message %v", p)
	}
	if c.CanGenerate() {
		t.Error("generation allowed while embedding")
	}
	c.Handle(Event{Type: "embed-progress", Loaded: 1, Total: 3})
	if c.Emb.ProgressText != "embedded 1 of 3 texts" {
		t.Errorf("progress %q", c.Emb.ProgressText)
	}
	// an answer that does not fit the request is reported, not shown
	c.Handle(Event{Type: "embedded", Kind: "matrix", Counts: []int{3, 3, 3}, Cos: [][]float64{{1, 0}, {0, 1}}})
	if c.Emb.Matrix != nil || !strings.Contains(c.Emb.Err, "does not fit") || c.Emb.Busy {
		t.Errorf("a 2x2 answer to 3 sentences: %q", c.Emb.Err)
	}
	c.OnCompare()
	cos := [][]float64{{1, 0.5, -0.1}, {0.5, 1, 0.2}, {-0.1, 0.2, 1}}
	c.Handle(Event{Type: "embedded", Kind: "matrix", Counts: []int{3, 3, 4}, Cos: cos, MS: 12})
	if m := c.Emb.Matrix; m == nil || !reflect.DeepEqual(m.Cos, cos) || !reflect.DeepEqual(m.Texts, []string{"a", "b", "c"}) || c.Emb.Err != "" {
		t.Fatalf("matrix %+v, error %q", c.Emb.Matrix, c.Emb.Err)
	}
	if c.Emb.Runs != 2 || !c.CanGenerate() || c.EmbState() != "ready" || c.Emb.ProgressText != "3 texts, 10 tokens, in 12 ms" {
		t.Errorf("runs %d, state %q, progress %q", c.Emb.Runs, c.EmbState(), c.Emb.ProgressText)
	}
	// late or repeated answers change nothing
	c.Handle(Event{Type: "embedded", Kind: "matrix", Counts: []int{3}, Cos: [][]float64{{1}}})
	if c.Emb.Runs != 2 || len(c.Emb.Matrix.Texts) != 3 {
		t.Error("a late answer was applied")
	}
}

func TestSearch(t *testing.T) {
	c, h := embedReady(t)
	c.Handle(Event{Type: "encoder-loaded", Encoder: EncoderInfo{Label: "e", Dim: 384}})
	c.Emb.Query, c.Emb.Items = "  bread ", "stocks\nrecipe\nfootball"
	c.OnSearch()
	if p := h.last(t); p["type"] != "embed" || p["kind"] != "search" || !reflect.DeepEqual(p["texts"], []any{"bread", "stocks", "recipe", "football"}) {
		t.Fatalf("search message %v", p)
	}
	c.Handle(Event{Type: "embedded", Kind: "search", Counts: []int{3, 3, 3, 3}, Cos: [][]float64{{0.05, 0.61, 0.12}}})
	r := c.Emb.Results
	if len(r) != 3 || r[0].Text != "recipe" || r[0].Line != 2 || r[2].Text != "stocks" || c.Emb.QueryTokens != 3 {
		t.Fatalf("results %+v", r)
	}
	n := len(h.posts)
	for _, q := range []struct{ query, want string }{
		{" ", "Write a query first"},
		{"a\nb", "The query is one line."},
		{strings.Repeat("x", MaxLineChars+1), "The query has 2001 characters"},
	} {
		c.Emb.Query = q.query
		c.OnSearch()
		if !strings.HasPrefix(c.Emb.Err, q.want) {
			t.Errorf("query %.10q: %q", q.query, c.Emb.Err)
		}
	}
	c.Emb.Query, c.Emb.Items = "q", strings.Repeat("item\n", MaxItems+1)
	c.OnSearch()
	if !strings.Contains(c.Emb.Err, "at most 200 items") || len(h.posts) != n {
		t.Errorf("too many items: %q; posts %d -> %d", c.Emb.Err, n, len(h.posts))
	}
	c.Emb.Items = "x"
	c.OnSearch()
	c.Handle(Event{Type: "embed-error", Message: "Line 1 of the list is too long for the encoder: 600 tokens, more than its 512."})
	if c.Emb.Busy || !strings.HasPrefix(c.Emb.Err, "Line 1 of the list") || c.Emb.Runs != 2 {
		t.Errorf("embed-error: busy %v, %q", c.Emb.Busy, c.Emb.Err)
	}
}

func TestEncoderErrorsAndFatal(t *testing.T) {
	c, _ := embedReady(t)
	c.OnCompare()
	c.Handle(Event{Type: "encoder-error", Message: "the download of models/minilm.mote failed: the server answered 404 File not found."})
	if c.Emb.Loading || c.Emb.Encoder != nil || !strings.HasPrefix(c.Emb.Err, "Could not load the sentence encoder: the download") || c.Emb.Loads != 1 {
		t.Errorf("encoder-error: %q", c.Emb.Err)
	}
	c.OnCompare()
	c.Handle(Event{Type: "fatal", Message: "The page's worker failed"})
	if c.Emb.Loading || c.Emb.Loads != 2 || !c.CanEmbed() {
		t.Error("fatal left the view busy")
	}
	c2 := NewRoot(&fakeHost{})
	c2.OnCompare()
	if c2.Emb.Err != "This page has no sentence encoder (models.json lists none)." {
		t.Errorf("no encoder: %q", c2.Emb.Err)
	}
}

func TestCells(t *testing.T) {
	for v, want := range map[float64]string{1: "background:rgb(43,95,217);color:#fff", 0: "background:rgb(255,255,255);color:#1d232b",
		-1: "background:rgb(255,200,200);color:#1d232b", 2: "background:rgb(43,95,217);color:#fff"} {
		if got := CellStyle(v); got != want {
			t.Errorf("CellStyle(%v) = %q, want %q", v, got, want)
		}
	}
	if CellText(0.8151429891586304) != "0.82" || Full(0.8151429891586304) != "0.8151429891586304" {
		t.Error("CellText or Full")
	}
	if Short("héllo world", 6) != "héllo…" || Short("short", 6) != "short" {
		t.Errorf("Short: %q", Short("héllo world", 6))
	}
}
