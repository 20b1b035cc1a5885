package edge

import (
	"encoding/json"
	"net/http"
)

// apiError is OpenAI's error object: {"error": {message, type, param, code}}.
type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"` // a field name, or null
	Code    any    `json:"code"`  // a short code, or null
}

// badRequest is a 400 invalid_request_error about param ("" for none).
func badRequest(param, code, msg string) *httpError {
	e := &httpError{status: http.StatusBadRequest, body: apiError{Message: msg, Type: "invalid_request_error"}}
	if param != "" {
		e.body.Param = param
	}
	if code != "" {
		e.body.Code = code
	}
	return e
}

// httpError is an error answer: a status and OpenAI's error object.
type httpError struct {
	status int
	body   apiError
}

func (e *httpError) Error() string { return e.body.Message }

func writeError(w http.ResponseWriter, status int, e apiError) {
	if e.Param == "" {
		e.Param = nil
	}
	if e.Code == "" {
		e.Code = nil
	}
	writeJSON(w, status, map[string]apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"internal error: encoding the response","type":"server_error","param":null,"code":null}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
