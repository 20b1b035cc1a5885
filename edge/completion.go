package edge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"mote/engine"
)

// completionRequest is OpenAI's legacy completions body. Pointers tell a
// missing or null field from a zero one; unsupported OpenAI fields are
// accepted only at their neutral values, and unknown fields are rejected
// (as OpenAI does), so a typo never silently falls back to a default.
type completionRequest struct {
	Model            *string          `json:"model"`
	Prompt           json.RawMessage  `json:"prompt"`
	MaxTokens        *int             `json:"max_tokens"`
	Temperature      *float64         `json:"temperature"`
	TopP             *float64         `json:"top_p"`
	Seed             *int64           `json:"seed"`
	Stop             json.RawMessage  `json:"stop"`
	Stream           *bool            `json:"stream"`
	StreamOptions    *streamOptions   `json:"stream_options"`
	N                *int             `json:"n"`
	BestOf           *int             `json:"best_of"`
	Echo             *bool            `json:"echo"`
	Logprobs         json.RawMessage  `json:"logprobs"`
	Suffix           *string          `json:"suffix"`
	PresencePenalty  *float64         `json:"presence_penalty"`
	FrequencyPenalty *float64         `json:"frequency_penalty"`
	LogitBias        *json.RawMessage `json:"logit_bias"`
	User             *string          `json:"user"`
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

// Defaults of OpenAI's completions API for absent fields.
const (
	defaultMaxTokens   = 16
	defaultTemperature = 1.0
	defaultTopP        = 1.0
	maxTemperature     = 2.0
)

// params is a validated request.
type params struct {
	model       engine.ModelInfo
	prompt      string
	maxTokens   int
	temperature float64
	topP        float64
	seed        int64
	stop        []string
	stream      bool
	usageChunk  bool
}

// parse reads and validates a completion request. The body size is checked
// before anything is parsed, the prompt's size before it is tokenized.
func (s *Server) parse(r *http.Request) (*params, *httpError) {
	var req completionRequest
	if err := s.readJSON(r, &req); err != nil {
		return nil, err
	}
	return s.validate(&req)
}

// readJSON reads a request body of at most MaxBodyBytes into v: one JSON
// object, unknown fields rejected, nothing after it.
func (s *Server) readJSON(r *http.Request, v any) *httpError {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return badRequest("", "body_too_large", fmt.Sprintf("Request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, limit))
	}
	if r.Body == nil {
		return badRequest("", "invalid_json", "The request has no body; send a JSON object")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return badRequest("", "invalid_body", "Could not read the request body: "+err.Error())
	}
	if int64(len(body)) > limit {
		return badRequest("", "body_too_large", fmt.Sprintf("Request body is larger than the limit of %d bytes", limit))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "invalid_json", "We could not parse the JSON body of your request: data after the JSON object")
	}
	return nil
}

// decodeError turns a json decoding error into OpenAI's wording.
func decodeError(err error) *httpError {
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("", "invalid_json", "The request body is empty; send a JSON object")
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("", "invalid_json", fmt.Sprintf("The request body must be a JSON object, got %s", te.Value))
		}
		return badRequest(te.Field, "invalid_type", fmt.Sprintf("Invalid type for '%s': expected %s, got %s", te.Field, typeName(te.Type.String()), te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(clip(f, 100), "unknown_parameter", fmt.Sprintf("Unrecognized request argument supplied: %s", clip(f, 100)))
	}
	return badRequest("", "invalid_json", "We could not parse the JSON body of your request: "+err.Error())
}

func typeName(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return "an object"
}

// validate checks every field's range and resolves defaults.
func (s *Server) validate(req *completionRequest) (*params, *httpError) {
	p := &params{maxTokens: min(defaultMaxTokens, s.cfg.MaxTokens), temperature: defaultTemperature, topP: defaultTopP}

	name := ""
	if req.Model != nil {
		name = *req.Model
	}
	mi, ok := s.model(name)
	if !ok {
		if name == "" {
			return nil, &httpError{status: http.StatusServiceUnavailable, body: apiError{Message: "No model is loaded (see /healthz)", Type: "server_error", Code: "no_model"}}
		}
		return nil, badRequest("model", "model_not_found", fmt.Sprintf("The model '%s' does not exist (see GET /v1/models)", clip(name, 200)))
	}
	p.model = mi

	if err := parsePrompt(req.Prompt, &p.prompt); err != nil {
		return nil, err
	}
	if len(p.prompt) > s.cfg.MaxPromptBytes {
		return nil, badRequest("prompt", "prompt_too_long", fmt.Sprintf("The prompt has %d bytes, more than the limit of %d", len(p.prompt), s.cfg.MaxPromptBytes))
	}
	if req.MaxTokens != nil {
		if *req.MaxTokens < 1 || *req.MaxTokens > s.cfg.MaxTokens {
			return nil, badRequest("max_tokens", "invalid_value", fmt.Sprintf("max_tokens must be in 1..%d, got %d", s.cfg.MaxTokens, *req.MaxTokens))
		}
		p.maxTokens = *req.MaxTokens
	}
	if req.Temperature != nil {
		t := *req.Temperature
		if !(t >= 0 && t <= maxTemperature) {
			return nil, badRequest("temperature", "invalid_value", fmt.Sprintf("temperature must be in 0..%g, got %g", float64(maxTemperature), t))
		}
		p.temperature = t
	}
	if req.TopP != nil {
		t := *req.TopP
		if !(t >= 0 && t <= 1) {
			return nil, badRequest("top_p", "invalid_value", fmt.Sprintf("top_p must be in 0..1, got %g", t))
		}
		p.topP = t
	}
	if req.Seed != nil {
		if *req.Seed < 0 || *req.Seed > engine.MaxSeed {
			return nil, badRequest("seed", "invalid_value", fmt.Sprintf("seed must be in 0..%d (0: from the clock), got %d", int64(engine.MaxSeed), *req.Seed))
		}
		p.seed = *req.Seed
	}
	var err *httpError
	if p.stop, err = parseStop(req.Stop); err != nil {
		return nil, err
	}
	if req.Stream != nil {
		p.stream = *req.Stream
	}
	if req.StreamOptions != nil {
		if !p.stream {
			return nil, badRequest("stream_options", "invalid_value", "stream_options is only allowed with stream: true")
		}
		p.usageChunk = req.StreamOptions.IncludeUsage != nil && *req.StreamOptions.IncludeUsage
	}
	// OpenAI fields mote does not implement: accepted at their neutral value only.
	switch {
	case req.N != nil && *req.N != 1:
		return nil, badRequest("n", "unsupported_value", "Only n = 1 is supported")
	case req.BestOf != nil && *req.BestOf != 1:
		return nil, badRequest("best_of", "unsupported_value", "Only best_of = 1 is supported")
	case req.Echo != nil && *req.Echo:
		return nil, badRequest("echo", "unsupported_value", "echo is not supported")
	case len(req.Logprobs) > 0 && string(req.Logprobs) != "null":
		return nil, badRequest("logprobs", "unsupported_value", "logprobs is not supported")
	case req.Suffix != nil && *req.Suffix != "":
		return nil, badRequest("suffix", "unsupported_value", "suffix is not supported")
	case req.PresencePenalty != nil && *req.PresencePenalty != 0:
		return nil, badRequest("presence_penalty", "unsupported_value", "presence_penalty is not supported (only 0)")
	case req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0:
		return nil, badRequest("frequency_penalty", "unsupported_value", "frequency_penalty is not supported (only 0)")
	case req.LogitBias != nil && string(*req.LogitBias) != "null" && string(*req.LogitBias) != "{}":
		return nil, badRequest("logit_bias", "unsupported_value", "logit_bias is not supported")
	}
	return p, nil
}

// parsePrompt accepts a string, or an array of exactly one string.
func parsePrompt(raw json.RawMessage, out *string) *httpError {
	if len(raw) == 0 || string(raw) == "null" {
		return badRequest("prompt", "missing_required_parameter", "You must provide a prompt (a string)")
	}
	if json.Unmarshal(raw, out) == nil {
		return nil
	}
	var arr []string
	if json.Unmarshal(raw, &arr) == nil && len(arr) == 1 {
		*out = arr[0]
		return nil
	}
	return badRequest("prompt", "invalid_type", "Invalid type for 'prompt': expected a string (or an array of one string)")
}

// parseStop accepts null, a string or an array of up to 4 strings.
func parseStop(raw json.RawMessage) ([]string, *httpError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	var list []string
	if json.Unmarshal(raw, &one) == nil {
		list = []string{one}
	} else if json.Unmarshal(raw, &list) != nil {
		return nil, badRequest("stop", "invalid_type", "Invalid type for 'stop': expected a string or an array of strings")
	}
	if len(list) > maxStopStrings {
		return nil, badRequest("stop", "invalid_value", fmt.Sprintf("stop takes at most %d strings, got %d", maxStopStrings, len(list)))
	}
	for _, s := range list {
		if s == "" || len(s) > maxStopBytes {
			return nil, badRequest("stop", "invalid_value", fmt.Sprintf("each stop string must have 1..%d bytes", maxStopBytes))
		}
	}
	return list, nil
}

// completion answers POST /v1/completions.
func (s *Server) completion(w http.ResponseWriter, r *http.Request) {
	p, herr := s.parse(r)
	if herr == nil {
		var g *generation
		if g, herr = s.start(p); herr == nil {
			s.completions.Add(1)
			if p.stream {
				s.stream(w, p, g)
			} else {
				s.whole(w, p, g)
			}
			s.tokens.Add(int64(g.produced))
			return
		}
	}
	writeError(w, herr.status, herr.body)
}

// generation drives one session: it skips the prompt's pieces, counts
// tokens and work, and applies the stop strings.
type generation struct {
	sess      *engine.Session
	skip      int   // prompt pieces still to run and drop
	perPos    int64 // work of one position
	budget    int64
	used      int64
	maxTokens int
	produced  int
	stops     []string
	pend      string // text held back: it may be the start of a stop string
	finish    string // "" while running, then "stop" or "length"

	id           string
	created      int64
	promptTokens int
}

// start tokenizes the prompt (by starting the session) and checks it
// against the context and the work budget.
func (s *Server) start(p *params) (*generation, *httpError) {
	c := p.model.Config
	// The session's positions: the prompt's (at most one token per byte,
	// plus the dummy prefix) and max_tokens more, within the context. The
	// generation below stops at max_tokens, whatever the prompt's tokens.
	steps := min(int64(c.SeqLen), int64(len(p.prompt))+1+int64(p.maxTokens))
	sess, err := s.eng.Start(p.model.Name, p.prompt, engine.Options{
		Temperature: float32(p.temperature), TopP: float32(p.topP), Seed: p.seed, Steps: int(steps)})
	switch {
	case errors.Is(err, engine.ErrLimit):
		return nil, &httpError{status: http.StatusServiceUnavailable, body: apiError{Message: "Too many completions running in this worker; retry shortly", Type: "server_error", Code: "overloaded"}}
	case errors.Is(err, engine.ErrNoModel):
		return nil, badRequest("model", "model_not_found", err.Error())
	case errors.Is(err, engine.ErrBadInput):
		return nil, badRequest("", "invalid_value", err.Error())
	case err != nil:
		return nil, &httpError{status: http.StatusInternalServerError, body: apiError{Message: err.Error(), Type: "server_error"}}
	}
	n := sess.PromptTokens() // BOS included
	if n > c.SeqLen {
		sess.Stop()
		return nil, badRequest("prompt", "context_length_exceeded", fmt.Sprintf("This model's maximum context length is %d tokens, however the prompt has %d tokens (BOS included)", c.SeqLen, n))
	}
	perPos := max(p.model.Params, 1)
	if int64(n)*perPos > s.cfg.WorkBudget {
		sess.Stop()
		return nil, badRequest("prompt", "work_budget_exceeded", fmt.Sprintf("The prompt's %d tokens need %d multiply-adds, more than this worker's per-request work budget of %d", n, int64(n)*perPos, s.cfg.WorkBudget))
	}
	return &generation{sess: sess, skip: n - 1, perPos: perPos, budget: s.cfg.WorkBudget,
		maxTokens: p.maxTokens, stops: p.stop, id: newID(), created: time.Now().Unix(), promptTokens: n}, nil
}

// next runs up to one generated token and returns the text it releases;
// more is false once the generation has finished (g.finish says why).
func (g *generation) next() (text string, more bool) {
	if g.finish != "" {
		return "", false
	}
	for g.skip > 0 {
		st := g.sess.Next()
		g.used += g.perPos
		g.skip--
		if st.Done {
			return g.end(st.Reason), false
		}
	}
	if g.produced >= g.maxTokens || g.used+g.perPos > g.budget {
		return g.end(engine.ReasonLength), false
	}
	st := g.sess.Next()
	g.used += g.perPos
	if st.Done {
		return g.end(st.Reason), false
	}
	g.produced++
	if len(g.stops) == 0 {
		return st.Text, true
	}
	g.pend += st.Text
	if i := firstStop(g.pend, g.stops); i >= 0 {
		text = g.pend[:i]
		g.pend = ""
		g.finish = "stop"
		g.sess.Stop()
		return text, false
	}
	keep := heldBack(g.pend, g.stops)
	text, g.pend = g.pend[:len(g.pend)-keep], g.pend[len(g.pend)-keep:]
	return text, true
}

// end finishes the generation for reason and releases held-back text.
func (g *generation) end(r engine.Reason) string {
	g.finish = "length"
	if r == engine.ReasonEnd {
		g.finish = "stop"
	}
	g.sess.Stop() // frees the session now (a no-op when it ended itself)
	t := g.pend
	g.pend = ""
	return t
}

// abort stops a generation whose client went away.
func (g *generation) abort() {
	if g.finish == "" {
		g.finish = "length"
		g.sess.Stop()
	}
}

// firstStop is the earliest index where any stop string starts in s, or -1.
func firstStop(s string, stops []string) int {
	best := -1
	for _, st := range stops {
		if i := strings.Index(s, st); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// heldBack is the length of the longest suffix of s that is a proper
// prefix of a stop string: text that must wait for the next token.
func heldBack(s string, stops []string) int {
	keep := 0
	for _, st := range stops {
		for n := min(len(st)-1, len(s)); n > keep; n-- {
			if strings.HasSuffix(s, st[:n]) {
				keep = n
				break
			}
		}
	}
	return keep
}

// choice and chunk are OpenAI's text_completion objects.
type choice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionObject struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}

func (g *generation) object(model string, choices []choice) completionObject {
	return completionObject{ID: g.id, Object: "text_completion", Created: g.created, Model: model, Choices: choices}
}

func (g *generation) usage() *usage {
	return &usage{PromptTokens: g.promptTokens, CompletionTokens: g.produced, TotalTokens: g.promptTokens + g.produced}
}

// whole runs the generation to its end and answers one JSON object.
func (s *Server) whole(w http.ResponseWriter, p *params, g *generation) {
	var sb strings.Builder
	for {
		t, more := g.next()
		sb.WriteString(t)
		if !more {
			break
		}
	}
	o := g.object(p.model.Name, []choice{{Text: sb.String(), FinishReason: &g.finish}})
	o.Usage = g.usage()
	writeJSON(w, http.StatusOK, o)
}

// stream answers Server-Sent Events: one chunk per generated token (its
// text may be empty while a possible stop string is held back), a last
// chunk with the finish reason, an optional usage chunk, then [DONE].
// Each event is one Write, so a host that turns writes into stream chunks
// (the worker) delivers one event per pull; the loop computes the next
// token only after the previous event was taken.
func (s *Server) stream(w http.ResponseWriter, p *params, g *generation) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var buf []byte
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		buf = append(append(append(buf[:0], "data: "...), b...), "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for {
		t, more := g.next()
		c := choice{Text: t}
		if !more {
			c.FinishReason = &g.finish
		}
		if !send(g.object(p.model.Name, []choice{c})) {
			g.abort()
			return
		}
		if !more {
			break
		}
	}
	if p.usageChunk {
		o := g.object(p.model.Name, []choice{})
		o.Usage = g.usage()
		if !send(o) {
			return
		}
	}
	if _, err := w.Write([]byte("data: [DONE]\n\n")); err == nil && flusher != nil {
		flusher.Flush()
	}
}

// newID is a completion id: "cmpl-" and 24 random hex digits.
func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("cmpl-%d", time.Now().UnixNano())
	}
	return "cmpl-" + hex.EncodeToString(b[:])
}
