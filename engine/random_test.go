package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadRandom(t *testing.T) {
	e := New(Limits{})
	tok := readShared(t, "models", "tok512.bin")
	for _, dt := range []string{"f32", "q8", "q4"} {
		mi, err := e.LoadRandom("r"+dt, "260K", dt, 32, 1, tok)
		if err != nil {
			t.Fatal(dt, err)
		}
		if mi.Format != FormatRandom || mi.Config.Dim != 64 || mi.Config.VocabSize != 512 || mi.Tokenizer != "separate" {
			t.Errorf("%s: info %+v", dt, mi)
		}
		if dt == "f32" && mi.DType != "f32" || dt != "f32" && mi.DType != dt {
			t.Errorf("%s: dtype %q", dt, mi.DType)
		}
		if want := map[string]int{"f32": 0, "q8": 32, "q4": 32}[dt]; mi.GroupSize != want {
			t.Errorf("%s: group size %d, want %d", dt, mi.GroupSize, want)
		}
		s, err := e.Start("r"+dt, "Once upon a time", Options{Temperature: 0, Steps: 20, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		text, _, n := generate(t, s)
		if n != 20 || !strings.HasPrefix(text, "Once upon a time") {
			t.Errorf("%s: %d tokens, text %q", dt, n, text)
		}
	}
	for name, err := range map[string]error{
		"shape":     func() error { _, err := e.LoadRandom("x", "1T", "q8", 32, 1, tok); return err }(),
		"dtype":     func() error { _, err := e.LoadRandom("x", "260K", "q2", 32, 1, tok); return err }(),
		"group":     func() error { _, err := e.LoadRandom("x", "260K", "q8", 0, 1, tok); return err }(),
		"tokenizer": func() error { _, err := e.LoadRandom("x", "260K", "q8", 32, 1, nil); return err }(),
		"exists":    func() error { _, err := e.LoadRandom("rq8", "260K", "q8", 32, 1, tok); return err }(),
	} {
		want := map[string]error{"shape": ErrBadInput, "dtype": ErrBadInput, "group": ErrBadInput,
			"tokenizer": ErrNoTokenizer, "exists": ErrExists}[name]
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}
