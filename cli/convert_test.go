package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var convShared = filepath.Join("..", "..", "shared")

func convSharedPath(parts ...string) string {
	return filepath.Join(append([]string{convShared}, parts...)...)
}

// mote runs the command line and returns its exit code and output.
func mote(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// oneErrorLine asserts stderr is exactly one "mote: ..." line.
func oneErrorLine(t *testing.T, stderr, what string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "mote: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%s: stderr is not one error line: %q", what, stderr)
	}
}

// infoField returns the value of a `mote info` line.
func infoField(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` +(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("info has no %q line:\n%s", key, out)
	}
	return m[1]
}

func TestConvertInfoRun(t *testing.T) {
	dir := t.TempDir()
	ref, err := os.ReadFile(convSharedPath("reference", "greedy_once_upon_a_time.txt"))
	if err != nil {
		t.Fatalf("ground truth: %v", err)
	}
	for _, mode := range []string{"none", "zstd", "tensor"} {
		out := filepath.Join(dir, "s."+mode+".mote")
		code, stdout, stderr := mote("convert", convSharedPath("models", "stories260K.bin"), out,
			"--compress", mode, "-z", convSharedPath("models", "tok512.bin"))
		if code != 0 || stdout != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", mode, code, stdout, stderr)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		// the summary line gives both sizes and the time
		summary := regexp.MustCompile(`^mote: .*stories260K\.bin \(llama2c, 1056540 bytes\) -> .*s\.` + mode +
			`\.mote \(mote v1, ` + mode + `, ` + strconv.FormatInt(st.Size(), 10) + ` bytes, [0-9.]+%, 512-token tokenizer\) in [0-9.]+m?s\n$`)
		if !summary.MatchString(stderr) {
			t.Errorf("%s: summary %q", mode, stderr)
		}
		if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("%s: %s.tmp left behind", mode, out)
		}

		code, stdout, stderr = mote("info", out)
		if code != 0 || stderr != "" {
			t.Fatalf("info %s: exit %d, stderr %q", mode, code, stderr)
		}
		// compressed modes store the matrices byte-shuffled (f32s), the norms as f32
		tensors := "47: 47 f32"
		if mode != "none" {
			tensors = "47: 36 f32s, 11 f32"
		}
		want := map[string]string{
			"format": "mote v1", "compression": mode, "checksums": "verified",
			"file size": fmt.Sprintf("%d bytes", st.Size()), "weights": "260032",
			"bits/weight": fmt.Sprintf("%.3f", float64(st.Size())*8/260032),
			"tensors":     tensors, "classifier": "shared with the token embedding", "activations": "float32",
			"config": "dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512, norm_eps 1e-05, rope_theta 10000",
		}
		for k, v := range want {
			if got := infoField(t, stdout, k); got != v {
				t.Errorf("info %s: %s is %q, want %q", mode, k, got, v)
			}
		}
		if got := infoField(t, stdout, "tokenizer"); !strings.HasPrefix(got, "512 tokens, bos 1, eos 2 (") {
			t.Errorf("info %s: tokenizer %q", mode, got)
		}

		// the container carries its tokenizer: no -z needed to reproduce llama2.c
		code, stdout, _ = mote("run", out, "-t", "0", "-n", "256", "-i", "Once upon a time")
		if code != 0 || stdout != string(ref) {
			t.Errorf("run %s: exit %d\n got %q\nwant %q", mode, code, stdout, ref)
		}
	}
}

func TestConvertDefaultsAndQ8(t *testing.T) {
	dir := t.TempDir()
	in := convSharedPath("models", "stories260K_q80_gs4.bin")
	tok := convSharedPath("models", "tok512.bin")
	plain, half := filepath.Join(dir, "q8.mote"), filepath.Join(dir, "q8h.mote")
	if code, _, stderr := mote("convert", in, plain, "-z", tok); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, _, stderr := mote("convert", "--f16-scales", in, "-z="+tok, plain+"x", "--level=19"); code != 0 {
		t.Fatalf("flags first: exit %d: %s", code, stderr)
	}
	if code, _, stderr := mote("convert", in, half, "-z", tok, "--f16-scales"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, out, _ := mote("info", plain)
	if infoField(t, out, "compression") != "zstd" || infoField(t, out, "tensors") != "47: 36 q8 (groups of 4, f32 scales), 11 f32" ||
		infoField(t, out, "activations") != "int8 in groups of 4" {
		t.Errorf("default conversion:\n%s", out)
	}
	_, out, _ = mote("info", half)
	if infoField(t, out, "tensors") != "47: 36 q8 (groups of 4, f16 scales), 11 f32" {
		t.Errorf("--f16-scales:\n%s", out)
	}
	a, _ := os.Stat(plain)
	b, _ := os.Stat(half)
	if b.Size() >= a.Size()*8/10 {
		t.Errorf("f16 scales: %d bytes, f32 scales %d", b.Size(), a.Size())
	}
	// the source format, for comparison
	_, out, _ = mote("info", in, "-z", tok)
	if infoField(t, out, "format") != "llama2c-ak42 v2" || infoField(t, out, "checksums") != "none" ||
		infoField(t, out, "tensors") != "47: 36 q8 (groups of 4), 11 f32" || infoField(t, out, "tokenizer") != "512 tokens, bos 1, eos 2" {
		t.Errorf("info of the source:\n%s", out)
	}
	_, out, _ = mote("info", convSharedPath("models", "stories260K.bin"))
	if infoField(t, out, "tokenizer") != "none (give one with -z)" || infoField(t, out, "bits/weight") != "32.505" {
		t.Errorf("info of the legacy checkpoint:\n%s", out)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mote")
	if code, _, stderr := mote("convert", convSharedPath("models", "stories260K.bin"), good, "-z", convSharedPath("models", "tok512.bin")); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.mote", data[:len(data)/2])
	flipped := bytes.Clone(data)
	flipped[len(flipped)-100] ^= 1
	flippedPath := write("flipped.mote", flipped)
	garbage := write("garbage.bin", []byte("this is not a model file at all, just some text"))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"info", truncated}, "truncated"},
		{[]string{"info", flippedPath}, ""},
		{[]string{"info", garbage}, "not a recognised model file"},
		{[]string{"info", filepath.Join(dir, "missing.mote")}, "no such file"},
		{[]string{"convert", truncated, filepath.Join(dir, "out1.mote")}, "truncated"},
		{[]string{"convert", garbage, filepath.Join(dir, "out2.mote")}, "not a recognised model file"},
		{[]string{"convert", good, filepath.Join(dir, "no", "such", "dir.mote")}, "dir.mote"},
		{[]string{"convert", convSharedPath("models", "stories260K.bin"), filepath.Join(dir, "out3.mote"), "-z", garbage}, "garbage.bin"},
	} {
		code, stdout, stderr := mote(c.args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", c.args, code, stdout)
		}
		oneErrorLine(t, stderr, fmt.Sprint(c.args))
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%v: %q does not say %q", c.args, stderr, c.want)
		}
	}
	// a damaged container fails its checksums, and says where
	_, _, stderr := mote("info", flippedPath)
	if !strings.Contains(stderr, "checksum mismatch") || !strings.Contains(stderr, "flipped.mote: offset ") {
		t.Errorf("flipped: %q", stderr)
	}
	// nothing is left behind by a failed conversion, and an existing OUT is kept
	keep := write("keep.mote", []byte("old"))
	if code, _, _ := mote("convert", garbage, keep); code != 1 {
		t.Errorf("convert garbage over an existing file: exit %d", code)
	}
	if b, _ := os.ReadFile(keep); string(b) != "old" {
		t.Errorf("existing OUT changed to %q", b)
	}
	for _, p := range []string{"out1.mote", "out2.mote", "out3.mote", "out1.mote.tmp", "out2.mote.tmp", "keep.mote.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed conversion", p)
		}
	}
}

func TestConvertUsage(t *testing.T) {
	in := convSharedPath("models", "stories260K.bin")
	for _, args := range [][]string{
		{"convert"},
		{"convert", in},
		{"convert", in, "a.mote", "b.mote"},
		{"convert", in, "a.mote", "--compress", "lz4"},
		{"convert", in, "a.mote", "--compress"},
		{"convert", in, "a.mote", "--level", "0"},
		{"convert", in, "a.mote", "--level=fast"},
		{"convert", in, "a.mote", "--f16-scales=yes"},
		{"convert", in, "a.mote", "--bogus"},
		{"info", in, "-z"},
		{"info", in, "extra"},
	} {
		code, stdout, stderr := mote(args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "mote: usage: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		if _, err := os.Stat("a.mote"); !os.IsNotExist(err) {
			t.Fatalf("%v wrote a.mote", args)
		}
	}
}
