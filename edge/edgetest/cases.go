// Package edgetest holds the bad-request cases shared by edge's native
// tests (httptest) and its tests against the real workerd
// (edge/workerdtest), so that both check the same statuses and error codes.
// It imports only the standard library.
package edgetest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// BadCase is one malformed request and the answer it must get.
type BadCase struct {
	Name   string
	Method string
	Path   string
	Body   string
	Header []string // name, value pairs
	Status int
	Param  string // the error's param ("" for null)
	Code   string // the error's code
}

// BadRequests lists the bad inputs for a worker whose body limit is
// maxBody bytes and whose prompt limit is below maxBody/3 bytes.
func BadRequests(maxBody int) []BadCase {
	post := func(name, body string, param, code string) BadCase {
		return BadCase{Name: name, Method: "POST", Path: "/v1/completions", Body: body, Status: 400, Param: param, Code: code}
	}
	return []BadCase{
		post("invalid JSON", `{"prompt": "Hi",`, "", "invalid_json"),
		post("not JSON", `hello`, "", "invalid_json"),
		post("empty body", ``, "", "invalid_json"),
		post("array body", `[1, 2]`, "", "invalid_json"),
		post("trailing data", `{"prompt": "Hi"} {}`, "", "invalid_json"),
		post("prompt missing", `{"max_tokens": 5}`, "prompt", "missing_required_parameter"),
		post("prompt number", `{"prompt": 42}`, "prompt", "invalid_type"),
		post("prompt two strings", `{"prompt": ["a", "b"]}`, "prompt", "invalid_type"),
		post("max_tokens string", `{"prompt": "Hi", "max_tokens": "5"}`, "max_tokens", "invalid_type"),
		post("max_tokens fraction", `{"prompt": "Hi", "max_tokens": 1.5}`, "max_tokens", "invalid_type"),
		post("max_tokens negative", `{"prompt": "Hi", "max_tokens": -1}`, "max_tokens", "invalid_value"),
		post("max_tokens zero", `{"prompt": "Hi", "max_tokens": 0}`, "max_tokens", "invalid_value"),
		post("max_tokens huge", `{"prompt": "Hi", "max_tokens": 1000000000}`, "max_tokens", "invalid_value"),
		post("max_tokens beyond int64", `{"prompt": "Hi", "max_tokens": 1e300}`, "max_tokens", "invalid_type"),
		post("temperature string", `{"prompt": "Hi", "temperature": "hot"}`, "temperature", "invalid_type"),
		post("temperature negative", `{"prompt": "Hi", "temperature": -0.5}`, "temperature", "invalid_value"),
		post("temperature huge", `{"prompt": "Hi", "temperature": 1e308}`, "temperature", "invalid_value"),
		post("temperature overflow", `{"prompt": "Hi", "temperature": 1e999}`, "temperature", "invalid_type"),
		post("top_p above 1", `{"prompt": "Hi", "top_p": 1.5}`, "top_p", "invalid_value"),
		post("seed negative", `{"prompt": "Hi", "seed": -42}`, "seed", "invalid_value"),
		post("seed huge", `{"prompt": "Hi", "seed": 9007199254740992}`, "seed", "invalid_value"),
		post("seed fraction", `{"prompt": "Hi", "seed": 0.5}`, "seed", "invalid_type"),
		post("stream string", `{"prompt": "Hi", "stream": "yes"}`, "stream", "invalid_type"),
		post("stop number", `{"prompt": "Hi", "stop": 7}`, "stop", "invalid_type"),
		post("stop too many", `{"prompt": "Hi", "stop": ["a", "b", "c", "d", "e"]}`, "stop", "invalid_value"),
		post("stop empty", `{"prompt": "Hi", "stop": [""]}`, "stop", "invalid_value"),
		post("unknown model", `{"prompt": "Hi", "model": "gpt-9"}`, "model", "model_not_found"),
		post("model number", `{"prompt": "Hi", "model": 3}`, "model", "invalid_type"),
		post("unknown field", `{"prompt": "Hi", "max_token": 5}`, "max_token", "unknown_parameter"),
		post("n above 1", `{"prompt": "Hi", "n": 2}`, "n", "unsupported_value"),
		post("echo", `{"prompt": "Hi", "echo": true}`, "echo", "unsupported_value"),
		post("prompt too long", fmt.Sprintf(`{"prompt": %q}`, strings.Repeat("a", maxBody/3+1)), "prompt", "prompt_too_long"),
		post("oversize body", fmt.Sprintf(`{"prompt": %q}`, strings.Repeat("a", maxBody)), "", "body_too_large"),
		{Name: "GET completions", Method: "GET", Path: "/v1/completions", Status: 405, Code: "method_not_allowed"},
		{Name: "DELETE models", Method: "DELETE", Path: "/v1/models", Status: 405, Code: "method_not_allowed"},
		{Name: "POST healthz", Method: "POST", Path: "/healthz", Body: "{}", Status: 405, Code: "method_not_allowed"},
		{Name: "unknown path", Method: "GET", Path: "/v1/chat/nothing", Status: 404, Code: "unknown_url"},
		{Name: "unknown root path", Method: "POST", Path: "/completions", Body: `{"prompt": "Hi"}`, Status: 404, Code: "unknown_url"},
	}
}

// CheckErrorBody checks OpenAI's error object: {"error": {message, type,
// param, code}} with a message, a type, and the given param and code.
func CheckErrorBody(body []byte, param, code string) error {
	var e struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return fmt.Errorf("not an OpenAI error object: %v: %q", err, body)
	}
	got := e.Error
	gp, gc := "", ""
	if got.Param != nil {
		gp = *got.Param
	}
	if got.Code != nil {
		gc = *got.Code
	}
	if got.Message == "" || got.Type == "" || gp != param || gc != code {
		return fmt.Errorf("error object %s: want param %q code %q", body, param, code)
	}
	return nil
}

// BadEmbedRequests lists bad POST /v1/embeddings requests for a worker with
// the default limits (edge.Config's: 64 texts of at most 16 KiB, 2048
// tokens a request), an encoder with a 512-token context and a language
// model named lm.
func BadEmbedRequests(lm string) []BadCase {
	post := func(name, body string, param, code string) BadCase {
		return BadCase{Name: "embeddings: " + name, Method: "POST", Path: "/v1/embeddings", Body: body, Status: 400, Param: param, Code: code}
	}
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("word ", n)) }
	many := make([]string, 65)
	for i := range many {
		many[i] = `"a"`
	}
	six := make([]string, 6)
	for i := range six {
		six[i] = fmt.Sprintf("%q", words(400)) // 402 tokens each
	}
	return []BadCase{
		post("invalid JSON", `{"input": "Hi"`, "", "invalid_json"),
		post("input missing", `{"model": null}`, "input", "missing_required_parameter"),
		post("input null", `{"input": null}`, "input", "missing_required_parameter"),
		post("input number", `{"input": 42}`, "input", "invalid_type"),
		post("input object", `{"input": {"text": "Hi"}}`, "input", "invalid_type"),
		post("input empty string", `{"input": ""}`, "input", "invalid_value"),
		post("input empty array", `{"input": []}`, "input", "invalid_value"),
		post("input empty string in array", `{"input": ["Hi", ""]}`, "input", "invalid_value"),
		post("input token ids", `{"input": [101, 7592, 102]}`, "input", "unsupported_value"),
		post("input token id arrays", `{"input": [[101, 7592, 102]]}`, "input", "unsupported_value"),
		post("input mixed", `{"input": ["Hi", true]}`, "input", "invalid_type"),
		post("too many inputs", `{"input": [`+strings.Join(many, ",")+`]}`, "input", "too_many_inputs"),
		post("input too long", fmt.Sprintf(`{"input": %q}`, strings.Repeat("a", 16<<10+1)), "input", "input_too_long"),
		post("beyond the context", fmt.Sprintf(`{"input": ["Hi", %q]}`, words(600)), "input", "context_length_exceeded"),
		post("too many tokens", `{"input": [`+strings.Join(six, ",")+`]}`, "input", "too_many_tokens"),
		post("encoding_format int8", `{"input": "Hi", "encoding_format": "int8"}`, "encoding_format", "invalid_value"),
		post("encoding_format number", `{"input": "Hi", "encoding_format": 1}`, "encoding_format", "invalid_type"),
		post("dimensions", `{"input": "Hi", "dimensions": 128}`, "dimensions", "unsupported_value"),
		post("unknown field", `{"input": "Hi", "inputs": "Hi"}`, "inputs", "unknown_parameter"),
		post("unknown model", `{"input": "Hi", "model": "text-embedding-3-small"}`, "model", "model_not_found"),
		post("a language model", fmt.Sprintf(`{"input": "Hi", "model": %q}`, lm), "model", "model_not_found"),
		{Name: "embeddings: GET", Method: "GET", Path: "/v1/embeddings", Status: 405, Code: "method_not_allowed"},
		{Name: "embeddings: PUT", Method: "PUT", Path: "/v1/embeddings", Body: `{"input": "Hi"}`, Status: 405, Code: "method_not_allowed"},
		{Name: "embeddings: trailing slash", Method: "POST", Path: "/v1/embeddings/", Body: `{"input": "Hi"}`, Status: 404, Code: "unknown_url"},
	}
}
