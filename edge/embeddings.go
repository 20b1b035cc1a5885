package edge

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"mote/engine"
)

// embeddingRequest is OpenAI's embeddings body. As for completions, unknown
// fields are rejected and pointers tell a missing field from a zero one.
type embeddingRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          *string         `json:"model"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           *string         `json:"user"`
}

// embedParams is a validated embeddings request.
type embedParams struct {
	enc    engine.EncoderInfo
	texts  []string
	base64 bool
	tokens int // all texts together, [CLS] and [SEP] included
}

// parseEmbed reads and validates an embeddings request: the body's size
// before parsing, the shape of every field, each text's bytes before it is
// tokenized, then each text's tokens against the model's context and all
// of them against MaxEmbedTokens, before any text is encoded.
func (s *Server) parseEmbed(r *http.Request) (*embedParams, *httpError) {
	var req embeddingRequest
	if err := s.readJSON(r, &req); err != nil {
		return nil, err
	}
	p := &embedParams{}
	var herr *httpError
	if p.texts, herr = s.parseInput(req.Input); herr != nil {
		return nil, herr
	}
	if req.EncodingFormat != nil {
		switch *req.EncodingFormat {
		case "float":
		case "base64":
			p.base64 = true
		default:
			return nil, badRequest("encoding_format", "invalid_value", fmt.Sprintf("encoding_format must be \"float\" or \"base64\", got %q", clip(*req.EncodingFormat, 40)))
		}
	}
	name := ""
	if req.Model != nil {
		name = *req.Model
	}
	enc, ok := s.encoder(name)
	if !ok {
		if _, isLM := s.model(name); isLM && name != "" {
			return nil, badRequest("model", "model_not_found", fmt.Sprintf("The model '%s' is a language model, not an embedding model (see GET /v1/models)", clip(name, 200)))
		}
		if name == "" {
			return nil, &httpError{status: http.StatusServiceUnavailable, body: apiError{Message: "No embedding model is loaded (see /healthz)", Type: "server_error", Code: "no_model"}}
		}
		return nil, badRequest("model", "model_not_found", fmt.Sprintf("The model '%s' does not exist (see GET /v1/models)", clip(name, 200)))
	}
	p.enc = enc
	if req.Dimensions != nil && *req.Dimensions != enc.Dim {
		return nil, badRequest("dimensions", "unsupported_value", fmt.Sprintf("dimensions must be %d, the model's width (shortened embeddings are not supported), got %d", enc.Dim, *req.Dimensions))
	}
	for i, t := range p.texts {
		ids, err := s.emb.Tokenize(enc.Name, t, engine.EmbedOptions{})
		if err != nil {
			return nil, embedError(err)
		}
		if len(ids) > enc.MaxTokens {
			return nil, badRequest("input", "context_length_exceeded", fmt.Sprintf("input[%d] has %d tokens ([CLS] and [SEP] included), more than the model's context of %d", i, len(ids), enc.MaxTokens))
		}
		p.tokens += len(ids)
		if p.tokens > s.cfg.MaxEmbedTokens {
			return nil, badRequest("input", "too_many_tokens", fmt.Sprintf("The inputs up to input[%d] have %d tokens, more than this worker's limit of %d per request", i, p.tokens, s.cfg.MaxEmbedTokens))
		}
	}
	return p, nil
}

// parseInput accepts a non-empty string or an array of 1..MaxEmbedInputs
// non-empty strings. Token arrays (OpenAI also takes integers) are refused:
// ids of another model's tokenizer mean nothing to this one.
func (s *Server) parseInput(raw json.RawMessage) ([]string, *httpError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("input", "missing_required_parameter", "You must provide an input (a string or an array of strings)")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, badRequest("input", "invalid_value", "input must not be an empty string")
		}
		if len(one) > s.cfg.MaxPromptBytes {
			return nil, badRequest("input", "input_too_long", fmt.Sprintf("input has %d bytes, more than the limit of %d", len(one), s.cfg.MaxPromptBytes))
		}
		return []string{one}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, badRequest("input", "invalid_type", "Invalid type for 'input': expected a string or an array of strings")
	}
	if len(items) == 0 {
		return nil, badRequest("input", "invalid_value", "input must not be an empty array")
	}
	if len(items) > s.cfg.MaxEmbedInputs {
		return nil, badRequest("input", "too_many_inputs", fmt.Sprintf("input has %d strings, more than this worker's limit of %d per request", len(items), s.cfg.MaxEmbedInputs))
	}
	texts := make([]string, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &texts[i]) != nil {
			var n float64
			var ns []float64
			if json.Unmarshal(it, &n) == nil || json.Unmarshal(it, &ns) == nil {
				return nil, badRequest("input", "unsupported_value", "Token arrays are not supported: send text (this model reads it with its own tokenizer)")
			}
			return nil, badRequest("input", "invalid_type", fmt.Sprintf("Invalid type for 'input[%d]': expected a string", i))
		}
		if texts[i] == "" {
			return nil, badRequest("input", "invalid_value", fmt.Sprintf("input[%d] is an empty string", i))
		}
		if len(texts[i]) > s.cfg.MaxPromptBytes {
			return nil, badRequest("input", "input_too_long", fmt.Sprintf("input[%d] has %d bytes, more than the limit of %d", i, len(texts[i]), s.cfg.MaxPromptBytes))
		}
	}
	return texts, nil
}

// embedError maps an engine error of an embeddings call to an answer.
func embedError(err error) *httpError {
	switch {
	case errors.Is(err, engine.ErrNoModel):
		return badRequest("model", "model_not_found", err.Error())
	case errors.Is(err, engine.ErrBadInput), errors.Is(err, engine.ErrLimit):
		return badRequest("input", "invalid_value", err.Error())
	}
	return &httpError{status: http.StatusInternalServerError, body: apiError{Message: err.Error(), Type: "server_error"}}
}

// embeddingObject and embeddingList are OpenAI's embeddings answer.
type embeddingObject struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string of little-endian float32s
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embeddingList struct {
	Object string            `json:"object"`
	Data   []embeddingObject `json:"data"`
	Model  string            `json:"model"`
	Usage  embeddingUsage    `json:"usage"`
}

// embed answers POST /v1/embeddings: every text is encoded in this call
// (synchronously, no goroutine), or none is.
func (s *Server) embed(w http.ResponseWriter, r *http.Request) {
	p, herr := s.parseEmbed(r)
	if herr != nil {
		writeError(w, herr.status, herr.body)
		return
	}
	res, err := s.emb.Embed(p.enc.Name, p.texts, engine.EmbedOptions{})
	if err != nil {
		herr := embedError(err)
		writeError(w, herr.status, herr.body)
		return
	}
	out := embeddingList{Object: "list", Data: make([]embeddingObject, len(res.Vectors)), Model: p.enc.Name,
		Usage: embeddingUsage{PromptTokens: res.TotalTokens, TotalTokens: res.TotalTokens}}
	for i, v := range res.Vectors {
		out.Data[i] = embeddingObject{Object: "embedding", Index: i, Embedding: v}
		if p.base64 {
			out.Data[i].Embedding = float32Base64(v)
		}
	}
	s.embeddings.Add(1)
	s.embedTokens.Add(int64(res.TotalTokens))
	writeJSON(w, http.StatusOK, out)
}

// float32Base64 is OpenAI's encoding_format "base64": the vector's float32
// values, little-endian, base64 (standard alphabet, padded).
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
