package ui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The embeddings view: a sentence encoder (all-MiniLM-L6-v2, docs/EMBED.md)
// in the same Web Worker as the language model. The visitor writes
// sentences, one per line, and sees their cosine similarity matrix as a
// heat map; or pastes a list and a query and gets the list ranked by cosine
// to the query. The worker embeds and takes the dot products (the vectors
// are unit length); this file checks the input, keeps the state and formats
// the results.

// Caps of the view. The engine's own limits (docs/EMBED.md: 256 texts a
// call, 512 tokens a text) are wider; these keep one press of a button
// within a few seconds on a slow machine (Chromium embeds a 12-token
// sentence in tens of milliseconds and a 128-token paragraph in about half
// a second here) and the heat map readable.
const (
	MaxSentences = 24   // heat map: 24 x 24 cells
	MaxItems     = 200  // search list (plus the query: 201 texts)
	MaxLineChars = 2000 // characters a line; the encoder also refuses more than 512 tokens
)

// Default texts of the view: the heat map and the search show something
// sensible on the first press.
const (
	DefaultSentences = "The cat sat on the mat.\nA kitten is resting on a rug.\nThe stock market fell sharply today.\nInvestors sold shares as prices dropped.\nI love eating pizza with my friends."
	DefaultItems     = "How do I reset my password?\nWhere can I download my invoices?\nThe app crashes when I open a photo.\nCan I change the email address on my account?\nHow do I cancel my subscription?\nWhat payment methods do you accept?"
	DefaultQuery     = "I forgot my login credentials"
)

// EncoderInfo describes the encoder the worker holds (mote.loadEncoder's info).
type EncoderInfo struct {
	Label     string
	Format    string
	DType     string
	Bytes     int64
	Params    int64
	Dim       int
	MaxTokens int
}

// Matrix is the heat map: the sentences, their token counts and cosines.
type Matrix struct {
	Texts  []string
	Tokens []int
	Cos    [][]float64 // (len(Texts), len(Texts))
}

// Ranked is one item of the search's result.
type Ranked struct {
	Rank  int // 1-based
	Line  int // 1-based line of the item in the list
	Text  string
	Cos   float64
	Token int // the item's tokens
}

// Embed is the view's state (a field of Root, so the markup reads c.Emb.X).
type Embed struct {
	Encoders []Entry // models.json's "encoders"; the first default one is used

	Sentences, Items, Query string // the inputs, as typed

	Encoder      *EncoderInfo // nil until one loaded
	Loading      bool         // the encoder is being fetched and read
	Busy         bool         // an embedding request runs in the worker
	Progress     float64      // 0..100 (loading, then embedding)
	ProgressText string
	Err          string
	Matrix       *Matrix
	Results      []Ranked
	QueryTokens  int
	MS           float64 // the last request's time in the worker

	pending string   // "matrix" or "search": run once the encoder is loaded
	texts   []string // the texts of the request that runs
	items   []string // search: the list, in order

	// Loads and Runs count finished encoder loads and embedding requests
	// (#emb-status data-loads, data-runs), for tests and benchmarks.
	Loads, Runs int
}

// Lines splits the text of a textarea into its lines for the encoder: the
// whitespace around the whole text is ignored (a trailing newline is
// fine), and each line is trimmed; an empty line, too many lines or a line
// too long is an error that says which. what names the lines ("sentence",
// "item").
func Lines(text, what string, least, most int) ([]string, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" {
		return nil, fmt.Errorf("Write at least %d %s, one per line.", least, plural(least, what))
	}
	raw := strings.Split(text, "\n")
	if len(raw) > most {
		return nil, fmt.Errorf("%d lines are more than this page takes at once: at most %d %s, one per line.", len(raw), most, plural(most, what))
	}
	out := make([]string, len(raw))
	for i, l := range raw {
		l = strings.TrimSpace(l)
		if l == "" {
			return nil, fmt.Errorf("Line %d is empty: write one %s per line, without empty lines.", i+1, what)
		}
		if err := lineLength(l, fmt.Sprintf("Line %d", i+1)); err != nil {
			return nil, err
		}
		out[i] = l
	}
	if len(out) < least {
		return nil, fmt.Errorf("Write at least %d %s, one per line; got %d.", least, plural(least, what), len(out))
	}
	return out, nil
}

func lineLength(l, name string) error {
	if !utf8.ValidString(l) {
		return fmt.Errorf("%s is not valid text (UTF-8).", name)
	}
	if n := utf8.RuneCountInString(l); n > MaxLineChars {
		return fmt.Errorf("%s has %d characters, more than the %d this page takes a line.", name, n, MaxLineChars)
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return what
	}
	return what + "s"
}

// CanEmbed: nothing else runs in the worker (it does one thing at a time).
func (c *Root) CanEmbed() bool {
	return !c.Emb.Loading && !c.Emb.Busy && !c.Generating && !c.Loading
}

// OnLoadEncoder loads the catalogue's default encoder.
func (c *Root) OnLoadEncoder() {
	if c.CanEmbed() && c.Emb.Encoder == nil {
		c.loadEncoder()
	}
}

func (c *Root) encoderEntry() (Entry, bool) {
	for _, e := range c.Emb.Encoders {
		if e.Default {
			return e, true
		}
	}
	if len(c.Emb.Encoders) > 0 {
		return c.Emb.Encoders[0], true
	}
	return Entry{}, false
}

func (c *Root) loadEncoder() bool {
	e, ok := c.encoderEntry()
	if !ok {
		c.Emb.Err = "This page has no sentence encoder (models.json lists none)."
		return false
	}
	c.Emb.Err = ""
	c.Emb.Loading = true
	c.Emb.Progress, c.Emb.ProgressText = 0, "starting"
	c.Host.Post(map[string]any{"type": "load-encoder", "label": e.Label, "url": e.URL, "size": float64(e.Bytes)})
	return true
}

// OnCompare embeds the sentences for the heat map (loading the encoder
// first when none is loaded).
func (c *Root) OnCompare() {
	if !c.CanEmbed() {
		return
	}
	s, err := Lines(c.Emb.Sentences, "sentence", 2, MaxSentences)
	if err != nil {
		c.Emb.Err = err.Error()
		return
	}
	c.Emb.texts, c.Emb.items = s, nil
	c.embedRun("matrix")
}

// OnSearch ranks the list by cosine to the query.
func (c *Root) OnSearch() {
	if !c.CanEmbed() {
		return
	}
	q := strings.TrimSpace(c.Emb.Query)
	if q == "" {
		c.Emb.Err = "Write a query first: the list is ranked by its similarity to it."
		return
	}
	if strings.ContainsAny(q, "\r\n") {
		c.Emb.Err = "The query is one line."
		return
	}
	if err := lineLength(q, "The query"); err != nil {
		c.Emb.Err = err.Error()
		return
	}
	items, err := Lines(c.Emb.Items, "item", 1, MaxItems)
	if err != nil {
		c.Emb.Err = err.Error()
		return
	}
	c.Emb.texts, c.Emb.items = append([]string{q}, items...), items
	c.embedRun("search")
}

func (c *Root) embedRun(kind string) {
	c.Emb.Err = ""
	if c.Emb.Encoder == nil {
		if c.loadEncoder() {
			c.Emb.pending = kind
		}
		return
	}
	c.Emb.Busy = true
	c.Emb.pending = kind
	c.Emb.Progress, c.Emb.ProgressText = 0, fmt.Sprintf("embedding %d texts", len(c.Emb.texts))
	texts := make([]any, len(c.Emb.texts))
	for i, t := range c.Emb.texts {
		texts[i] = t
	}
	c.Host.Post(map[string]any{"type": "embed", "kind": kind, "texts": texts})
}

// handleEmbed applies the worker's embedding events; it reports whether
// the event was one of them.
func (c *Root) handleEmbed(ev Event) bool {
	e := &c.Emb
	switch ev.Type {
	case "encoder-progress":
		e.Progress, e.ProgressText = progress(ev)
		if ev.Phase == "read" {
			e.ProgressText = "reading the encoder"
		}
	case "encoder-loaded":
		e.Loads++
		e.Loading = false
		info := ev.Encoder
		e.Encoder = &info
		e.Progress = 100
		e.ProgressText = fmt.Sprintf("encoder loaded in %.0f ms", ev.MS)
		if ev.Cached {
			e.ProgressText += " from the page's cache"
		}
		c.Entries(ev.Entries)
		if k := e.pending; k != "" {
			e.pending = ""
			c.embedRun(k)
		}
	case "encoder-error":
		e.Loads++
		e.Loading, e.pending = false, ""
		e.Progress, e.ProgressText = 0, "not loaded"
		e.Err = "Could not load the sentence encoder: " + ev.Message
	case "embed-progress":
		if ev.Total > 0 {
			e.Progress = min(100, 100*ev.Loaded/ev.Total)
			e.ProgressText = fmt.Sprintf("embedded %.0f of %.0f texts", ev.Loaded, ev.Total)
		}
	case "embedded":
		if !e.Busy {
			return true
		}
		e.Runs++
		e.Busy = false
		c.embedded(ev)
	case "embed-error":
		e.Runs++
		e.Busy, e.pending = false, ""
		e.Progress, e.ProgressText = 0, ""
		e.Err = ev.Message
	default:
		return false
	}
	return true
}

// embedded turns the worker's cosines into the heat map or the ranking;
// they must fit the request, or the page says so (a bug, not bad input).
func (c *Root) embedded(ev Event) {
	e := &c.Emb
	n := len(e.texts)
	e.MS = ev.MS
	e.Progress, e.ProgressText = 100, fmt.Sprintf("%d texts, %d tokens, in %.0f ms", n, sum(ev.Counts), ev.MS)
	bad := len(ev.Counts) != n
	switch ev.Kind {
	case "matrix":
		bad = bad || len(ev.Cos) != n
		for _, r := range ev.Cos {
			bad = bad || len(r) != n
		}
		if bad || e.pending != "matrix" {
			e.Err = "The worker's answer does not fit the request (a bug in the page)."
			return
		}
		e.Matrix = &Matrix{Texts: e.texts, Tokens: ev.Counts, Cos: ev.Cos}
	case "search":
		if bad || len(ev.Cos) != 1 || len(ev.Cos[0]) != len(e.items) || e.pending != "search" {
			e.Err = "The worker's answer does not fit the request (a bug in the page)."
			return
		}
		e.Results = Rank(e.items, ev.Cos[0], ev.Counts[1:])
		e.QueryTokens = ev.Counts[0]
	}
	e.pending = ""
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// Rank orders items by cosine, highest first; equal cosines keep the
// list's order.
func Rank(items []string, cos []float64, tokens []int) []Ranked {
	r := make([]Ranked, len(items))
	for i, t := range items {
		r[i] = Ranked{Line: i + 1, Text: t, Cos: cos[i]}
		if i < len(tokens) {
			r[i].Token = tokens[i]
		}
	}
	sort.SliceStable(r, func(a, b int) bool { return r[a].Cos > r[b].Cos })
	for i := range r {
		r[i].Rank = i + 1
	}
	return r
}

// CellText is a heat map cell's number: two decimals (the full value is
// the cell's data-cos and title).
func CellText(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// Full is a cosine with all the digits of a float64, for data-cos.
func Full(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// CellStyle colours a heat map cell: white at cosine 0 (or below, shaded
// red for negative values) to the page's accent blue at 1, with white text
// on the dark end.
func CellStyle(v float64) string {
	t := min(max(v, -1), 1)
	var r, g, b float64
	if t >= 0 {
		// white (255,255,255) -> accent (43,95,217)
		r, g, b = 255-t*(255-43), 255-t*(255-95), 255-t*(255-217)
	} else {
		r, g, b = 255, 255+t*(255-200), 255+t*(255-200)
	}
	fg := "#1d232b"
	if t > 0.55 {
		fg = "#fff"
	}
	return fmt.Sprintf("background:rgb(%.0f,%.0f,%.0f);color:%s", r, g, b, fg)
}

// Short cuts a text for a heat map label.
func Short(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// EmbStatus is the view's status line.
func (c *Root) EmbStatus() string {
	e := &c.Emb
	switch {
	case e.Encoder != nil:
		m := e.Encoder
		s := fmt.Sprintf("%s · %s %s · %s · %d dimensions", m.Label, m.Format, m.DType, Size(m.Bytes), m.Dim)
		if e.Busy {
			s += " · embedding"
		}
		return s
	case e.Loading:
		return "Loading the sentence encoder…"
	}
	if en, ok := c.encoderEntry(); ok {
		return fmt.Sprintf("Sentence encoder not loaded yet (%s, it loads on the first Compare or Search).", EntryText(en))
	}
	return "No sentence encoder."
}

// EmbState is #emb-status's data-state: idle, loading, embedding, ready.
func (c *Root) EmbState() string {
	switch {
	case c.Emb.Loading:
		return "loading"
	case c.Emb.Busy:
		return "embedding"
	case c.Emb.Encoder != nil:
		return "ready"
	}
	return "idle"
}

// EncoderButton labels #load-encoder.
func (c *Root) EncoderButton() string {
	if c.Emb.Encoder != nil {
		return "Encoder loaded"
	}
	if en, ok := c.encoderEntry(); ok && en.Bytes > 0 {
		return "Load encoder (" + Size(en.Bytes) + ")"
	}
	return "Load encoder"
}

// ProgressValueEmb is #emb-progress's value attribute.
func (c *Root) ProgressValueEmb() string { return strconv.FormatFloat(c.Emb.Progress, 'f', 0, 64) }
