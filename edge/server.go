package edge

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mote/core"
	"mote/engine"
)

// Server is the worker's HTTP API over an engine. It is safe for concurrent
// use and starts no goroutine: a streamed completion runs one token per
// Write, inside the caller's goroutine (see the package doc).
type Server struct {
	cfg     Config
	eng     *engine.Engine
	emb     *engine.Embedder // sentence encoders, for POST /v1/embeddings
	started time.Time

	requests    atomic.Int64 // requests seen, any path or status
	completions atomic.Int64 // completions that produced a response body
	tokens      atomic.Int64 // completion tokens generated
	loads       atomic.Int64 // models loaded successfully
	loadFails   atomic.Int64
	embeddings  atomic.Int64 // embeddings requests answered with vectors
	embedTokens atomic.Int64 // tokens they encoded
	encLoads    atomic.Int64 // encoders loaded successfully

	mu       sync.Mutex
	infos    map[string]engine.ModelInfo
	order    []string             // load order; the first is the default unless cfg says otherwise
	encoders []engine.EncoderInfo // load order; the first is the default encoder
	lastFail string               // the last load error, for /healthz
	cfgErr   error                // a Config that could not be read: every request gets 500

	// HealthExtra, when set, adds fields to /healthz (the js entry point
	// reports its Go instance count and memory there).
	HealthExtra func(map[string]any)
}

// New returns a Server with no model loaded.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg: cfg,
		eng: engine.New(engine.Limits{MaxSessions: cfg.MaxSessions, MaxPromptBytes: cfg.MaxPromptBytes}),
		// nil parallelism: one core, as in wasm (a worker isolate has one thread)
		emb: engine.NewEmbedder(engine.EmbedLimits{MaxInputs: cfg.MaxEmbedInputs, MaxInputBytes: cfg.MaxPromptBytes,
			MaxTotalTokens: cfg.MaxEmbedTokens}, nil),
		started: time.Now(),
		infos:   map[string]engine.ModelInfo{},
	}
}

// Broken returns a Server that answers every request with 500 and err: for
// a worker whose configuration could not be read.
func Broken(err error) *Server {
	s := New(Config{})
	s.cfgErr = err
	return s
}

// Config returns the configuration in force, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Load reads a model file held in memory and serves it under name.
// tokenizer, when not empty, is a llama2.c tokenizer .bin for formats that
// carry none. Failures are counted and shown by /healthz.
func (s *Server) Load(name string, data, tokenizer []byte) (engine.ModelInfo, error) {
	mi, err := s.eng.Load(name, data, tokenizer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.loadFails.Add(1)
		s.lastFail = err.Error()
		return mi, err
	}
	s.loads.Add(1)
	s.infos[name] = mi
	s.order = append(s.order, name)
	return mi, nil
}

// LoadEncoder reads a sentence encoder held in memory (a GGUF bert model or
// a mote encoder container) and serves it under name for POST
// /v1/embeddings. Failures are counted and shown by /healthz, as Load's.
func (s *Server) LoadEncoder(name string, data []byte) (engine.EncoderInfo, error) {
	s.mu.Lock()
	_, clash := s.infos[name]
	s.mu.Unlock()
	var ei engine.EncoderInfo
	err := fmt.Errorf("%w: %q is a language model's name", engine.ErrExists, name)
	if !clash {
		ei, err = s.emb.Load(name, data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.loadFails.Add(1)
		s.lastFail = err.Error()
		return ei, err
	}
	s.encLoads.Add(1)
	s.encoders = append(s.encoders, ei)
	return ei, nil
}

// encoder resolves a requested encoder name ("" for the default, the first
// loaded).
func (s *Server) encoder(name string) (engine.EncoderInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ei := range s.encoders {
		if name == "" || ei.Name == name {
			return ei, true
		}
	}
	return engine.EncoderInfo{}, false
}

func (s *Server) encoderList() []engine.EncoderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]engine.EncoderInfo(nil), s.encoders...)
}

// LoadFailed records a model that could not be fetched, for /healthz.
func (s *Server) LoadFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadFails.Add(1)
	s.lastFail = err.Error()
}

// Loads is the number of models loaded so far.
func (s *Server) Loads() int64 { return s.loads.Load() }

// Requests is the number of requests seen so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

// model resolves a requested model name ("" for the default).
func (s *Server) model(name string) (engine.ModelInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		name = s.cfg.DefaultModel
		if name == "" && len(s.order) > 0 {
			name = s.order[0]
		}
	}
	mi, ok := s.infos[name]
	return mi, ok
}

func (s *Server) modelList() []engine.ModelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]engine.ModelInfo, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.infos[n])
	}
	return out
}

// ServeHTTP routes a request. It never lets a panic out: a bug answers 500
// (when the headers have not gone yet) and the server keeps serving.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if !sw.wrote {
				writeError(sw, http.StatusInternalServerError, apiError{Message: fmt.Sprintf("internal error: %v", p), Type: "server_error"})
			}
		}
	}()
	if s.cfgErr != nil {
		writeError(sw, http.StatusInternalServerError, apiError{Message: "worker misconfigured: " + s.cfgErr.Error(), Type: "server_error", Code: "bad_config"})
		return
	}
	if s.cors(sw, r) {
		return
	}
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1/") && !s.authorized(r) {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="mote"`)
		writeError(sw, http.StatusUnauthorized, apiError{Message: "Incorrect or missing API key: send Authorization: Bearer <key>.", Type: "invalid_request_error", Code: "invalid_api_key"})
		return
	}
	switch {
	case path == "/v1/completions":
		if !allow(sw, r, http.MethodPost) {
			return
		}
		s.completion(sw, r)
	case path == "/v1/embeddings":
		if !allow(sw, r, http.MethodPost) {
			return
		}
		s.embed(sw, r)
	case path == "/v1/models":
		if !allow(sw, r, http.MethodGet, http.MethodHead) {
			return
		}
		s.models(sw)
	case strings.HasPrefix(path, "/v1/models/"):
		if !allow(sw, r, http.MethodGet, http.MethodHead) {
			return
		}
		s.oneModel(sw, strings.TrimPrefix(path, "/v1/models/"))
	case path == "/healthz":
		if !allow(sw, r, http.MethodGet, http.MethodHead) {
			return
		}
		s.health(sw)
	case path == "/":
		if !allow(sw, r, http.MethodGet, http.MethodHead) {
			return
		}
		writeJSON(sw, http.StatusOK, map[string]any{
			"name":      "mote",
			"version":   engine.Version,
			"endpoints": []string{"POST /v1/completions", "POST /v1/embeddings", "GET /v1/models", "GET /healthz"},
		})
	default:
		writeError(sw, http.StatusNotFound, apiError{Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, clip(path, 200)), Type: "invalid_request_error", Code: "unknown_url"})
	}
}

// allow answers 405 unless the method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
	writeError(w, http.StatusMethodNotAllowed, apiError{Message: fmt.Sprintf("Method %s not allowed on %s (allowed: %s)", clip(r.Method, 20), r.URL.Path, strings.Join(methods, ", ")), Type: "invalid_request_error", Code: "method_not_allowed"})
	return false
}

// authorized checks the bearer token when an API key is configured.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.APIKey)) == 1
}

// cors adds the CORS headers for an allowed Origin and answers preflight
// requests; it reports whether the request was answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	allowed := ""
	if origin != "" {
		for _, o := range s.cfg.AllowedOrigins {
			if o == "*" {
				allowed = "*"
				break
			}
			if strings.EqualFold(o, origin) {
				allowed = origin
				break
			}
		}
		h.Add("Vary", "Origin")
	}
	if allowed != "" {
		h.Set("Access-Control-Allow-Origin", allowed)
	}
	if r.Method != http.MethodOptions {
		return false
	}
	if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Allow", "GET, HEAD, POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if allowed == "" {
		writeError(w, http.StatusForbidden, apiError{Message: fmt.Sprintf("Origin %s is not allowed", clip(origin, 200)), Type: "invalid_request_error", Code: "origin_not_allowed"})
		return true
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
	// (joined: syumai/workers splits header values at commas)
	reqHeaders := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
	if reqHeaders == "" || len(reqHeaders) > 1024 {
		reqHeaders = "Authorization, Content-Type"
	}
	h.Set("Access-Control-Allow-Headers", reqHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// modelObject is one entry of GET /v1/models, OpenAI's shape plus mote's facts.
type modelObject struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Created       int64  `json:"created"`
	OwnedBy       string `json:"owned_by"`
	ContextLength int    `json:"context_length"`
	Params        int64  `json:"params"`
	DType         string `json:"dtype"`
	Format        string `json:"format"`
	// Endpoint is the API the model serves: "completions" or "embeddings".
	Endpoint string `json:"endpoint"`
	// Dimensions is an encoder's embedding width.
	Dimensions int `json:"dimensions,omitempty"`
}

func toModelObject(mi engine.ModelInfo) modelObject {
	return modelObject{ID: mi.Name, Object: "model", OwnedBy: "mote", ContextLength: mi.Config.SeqLen,
		Params: mi.Params, DType: mi.DType, Format: string(mi.Format), Endpoint: "completions"}
}

func encoderObject(ei engine.EncoderInfo) modelObject {
	return modelObject{ID: ei.Name, Object: "model", OwnedBy: "mote", ContextLength: ei.MaxTokens,
		Params: ei.Params, DType: ei.DType, Format: string(ei.Format), Endpoint: "embeddings", Dimensions: ei.Dim}
}

func (s *Server) models(w http.ResponseWriter) {
	ms := s.modelList()
	data := make([]modelObject, 0, len(ms))
	for _, mi := range ms {
		data = append(data, toModelObject(mi))
	}
	for _, ei := range s.encoderList() {
		data = append(data, encoderObject(ei))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) oneModel(w http.ResponseWriter, name string) {
	mi, ok := s.model(name)
	if ei, isEnc := s.encoder(name); !ok && isEnc && name != "" {
		writeJSON(w, http.StatusOK, encoderObject(ei))
		return
	}
	if !ok || name == "" {
		writeError(w, http.StatusNotFound, apiError{Message: fmt.Sprintf("The model '%s' does not exist", clip(name, 200)), Type: "invalid_request_error", Param: "model", Code: "model_not_found"})
		return
	}
	writeJSON(w, http.StatusOK, toModelObject(mi))
}

func (s *Server) health(w http.ResponseWriter) {
	status := "ok"
	s.mu.Lock()
	nModels, lastFail := len(s.order), s.lastFail
	s.mu.Unlock()
	if nModels == 0 {
		status = "no_model"
	}
	h := map[string]any{
		"status":          status,
		"version":         engine.Version,
		"go":              runtime.Version(),
		"simd":            core.SIMD,
		"model_loads":     s.loads.Load(),
		"model_load_fail": s.loadFails.Load(),
		"requests":        s.requests.Load(),
		"completions":     s.completions.Load(),
		"tokens":          s.tokens.Load(),
		"active_sessions": s.eng.Sessions(),
		"encoder_loads":   s.encLoads.Load(),
		"embeddings":      s.embeddings.Load(),
		"embed_tokens":    s.embedTokens.Load(),
		"uptime_ms":       time.Since(s.started).Milliseconds(),
	}
	if lastFail != "" {
		h["last_load_error"] = lastFail
	}
	names := []string{}
	for _, mi := range s.modelList() {
		names = append(names, mi.Name)
	}
	h["models"] = names
	encs := []string{}
	for _, ei := range s.encoderList() {
		encs = append(encs, ei.Name)
	}
	h["encoders"] = encs
	if s.HealthExtra != nil {
		s.HealthExtra(h)
	}
	code := http.StatusOK
	if nModels == 0 {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// statusWriter remembers whether the response has started.
type statusWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush passes on to the underlying writer when it can flush.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clip shortens a client-supplied string before it goes into a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
