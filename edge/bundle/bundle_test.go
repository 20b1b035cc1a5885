package bundle

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAssetsSplit: the parts are at most PartBytes, join to the model, and
// the manifest and both configs name what was written.
func TestAssetsSplit(t *testing.T) {
	in := t.TempDir()
	model := bytes.Repeat([]byte("0123456789"), 2501) // 25,010 bytes: 3 parts of 10,000
	o := Options{Out: t.TempDir(), Glue: write(t, in, "g.mjs", []byte("//")), WasmExec: write(t, in, "w.js", []byte("//")),
		App: write(t, in, "a.wasm", []byte("\x00asm")), Model: write(t, in, "m.mote", model), Source: SourceAssets, PartBytes: 10000}
	rep, err := Write(o)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name  string
		Bytes int
		Parts []string
	}
	j, err := os.ReadFile(filepath.Join(o.Out, "assets", "models", "m.mote.json"))
	if err != nil || json.Unmarshal(j, &m) != nil || rep.ModelManifest != "/models/m.mote.json" {
		t.Fatalf("manifest %s: %v (%s)", j, err, rep.ModelManifest)
	}
	var joined []byte
	for _, p := range m.Parts {
		b, err := os.ReadFile(filepath.Join(o.Out, "assets", "models", p))
		if err != nil || len(b) > 10000 {
			t.Fatalf("part %s: %d bytes, %v", p, len(b), err)
		}
		joined = append(joined, b...)
	}
	if m.Name != "m" || m.Bytes != len(model) || len(m.Parts) != 3 || !bytes.Equal(joined, model) {
		t.Errorf("manifest %+v: parts do not make the model", m)
	}
	wr, _ := os.ReadFile(rep.WranglerConfigPath)
	wd, _ := os.ReadFile(rep.WorkerdConfigPath)
	for _, want := range []string{`"binding": "ASSETS"`, `"run_worker_first": true`, `"MOTE_MODEL_PATH": "/models/m.mote.json"`, `"main": "worker.mjs"`} {
		if !strings.Contains(string(wr), want) {
			t.Errorf("wrangler.jsonc lacks %s:\n%s", want, wr)
		}
	}
	for _, want := range []string{`disk = (path = "assets"`, `(name = "app.wasm", wasm = embed "app.wasm")`, `fromEnvironment = "MOTE_API_KEY"`} {
		if !strings.Contains(string(wd), want) {
			t.Errorf("workerd.capnp lacks %s:\n%s", want, wd)
		}
	}
	if rep.UploadGzipBytes <= 0 || rep.AssetBytes != int64(len(model))+int64(len(j)) {
		t.Errorf("sizes: %+v", rep)
	}
	// A second build with a bundled model removes the asset files.
	o.Source = SourceBundle
	if _, err := Write(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.Out, "assets")); err == nil {
		if fs, _ := filepath.Glob(filepath.Join(o.Out, "assets", "models", "*")); len(fs) > 0 {
			t.Errorf("stale assets left: %v", fs)
		}
	}
	if _, err := os.Stat(filepath.Join(o.Out, "model-m.mote.bin")); err != nil {
		t.Errorf("bundled model missing: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Write(Options{Out: t.TempDir()}); err == nil {
		t.Error("no inputs accepted")
	}
	in := t.TempDir()
	o := Options{Out: t.TempDir(), Glue: write(t, in, "g", nil), WasmExec: write(t, in, "w", nil), App: write(t, in, "a", nil), Source: "ftp"}
	if _, err := Write(o); err == nil {
		t.Error("unknown source accepted")
	}
}

// TestEncoderAssets: an encoder goes to static assets beside a bundled
// model (never into the upload), and both configs bind the assets and name
// its manifest.
func TestEncoderAssets(t *testing.T) {
	in := t.TempDir()
	enc := bytes.Repeat([]byte("encoder!"), 3000) // 24,000 bytes: 3 parts of at most 10,000
	o := Options{Out: t.TempDir(), Glue: write(t, in, "g.mjs", []byte("//")), WasmExec: write(t, in, "w.js", []byte("//")),
		App: write(t, in, "a.wasm", []byte("\x00asm")), Model: write(t, in, "m.mote", []byte("model")),
		Encoder: write(t, in, "e.mote", enc), PartBytes: 10000}
	rep, err := Write(o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EncoderManifest != "/models/e.mote.json" {
		t.Fatalf("encoder manifest %q", rep.EncoderManifest)
	}
	var m struct {
		Name  string
		Bytes int
		Parts []string
	}
	j, err := os.ReadFile(filepath.Join(o.Out, "assets", "models", "e.mote.json"))
	if err != nil || json.Unmarshal(j, &m) != nil || m.Name != "e" || m.Bytes != len(enc) || len(m.Parts) != 3 {
		t.Fatalf("encoder manifest %s: %v", j, err)
	}
	for _, f := range rep.Files {
		if f.Upload && strings.Contains(f.Path, "e.mote") {
			t.Errorf("the encoder is in the upload: %s", f.Path)
		}
	}
	wr, _ := os.ReadFile(rep.WranglerConfigPath)
	wd, _ := os.ReadFile(rep.WorkerdConfigPath)
	for _, want := range []string{`"binding": "ASSETS"`, `"MOTE_ENCODER_PATH": "/models/e.mote.json"`, `"MOTE_ENCODER_NAME": "e"`, `"MOTE_MODEL_SOURCE": "bundle"`} {
		if !strings.Contains(string(wr), want) {
			t.Errorf("wrangler.jsonc lacks %s:\n%s", want, wr)
		}
	}
	for _, want := range []string{`disk = (path = "assets"`, `(name = "ASSETS", service = "assets")`, `(name = "MOTE_ENCODER_PATH", text = "/models/e.mote.json")`} {
		if !strings.Contains(string(wd), want) {
			t.Errorf("workerd.capnp lacks %s:\n%s", want, wd)
		}
	}
}
