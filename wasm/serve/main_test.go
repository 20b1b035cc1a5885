package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html":   "<!doctype html><title>x</title>",
		"mote-js.wasm": "\x00asm\x01\x00\x00\x00",
		"mote.js":      "globalThis.x = 1;",
		"app.mjs":      "export const x = 1;",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(handler(dir))
	defer srv.Close()
	for _, c := range []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", files["index.html"]},
		{"/mote-js.wasm", "application/wasm", files["mote-js.wasm"]},
		{"/mote.js", "text/javascript; charset=utf-8", files["mote.js"]},
		{"/app.mjs", "text/javascript; charset=utf-8", files["app.mjs"]},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || string(body) != c.body ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %q %q cache %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, resp.Header.Get("Cache-Control"))
		}
	}
	resp, err := http.Get(srv.URL + "/missing.wasm")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
}
