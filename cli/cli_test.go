package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var shared = filepath.Join("..", "..", "shared")

func sharedPath(parts ...string) string {
	return filepath.Join(append([]string{shared}, parts...)...)
}

// referenceCases are the llama2.c runs recorded in ../shared/reference.
var referenceCases = []struct {
	file string
	args []string
}{
	{"greedy_once_upon_a_time.txt", []string{"-t", "0", "-n", "256", "-i", "Once upon a time"}},
	{"greedy_lily_and_ben.txt", []string{"-t", "0", "-n", "256", "-i", "Lily and Ben"}},
	{"seed42_once_upon_a_time.txt", []string{"-t", "1.0", "-s", "42", "-n", "256", "-i", "Once upon a time"}},
	{"test_all_noprompt_n200.txt", []string{"-t", "0.0", "-n", "200"}},
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

// checkReference runs every reference case with the model arguments given
// and requires llama2.c's stdout byte for byte.
func checkReference(t *testing.T, model ...string) {
	t.Helper()
	for _, rc := range referenceCases {
		want, err := os.ReadFile(sharedPath("reference", rc.file))
		if err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"run"}, model...), rc.args...)
		out, errs, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		if out != string(want) {
			t.Errorf("%s with %v: output differs from the reference\n got: %.200q\nwant: %.200q", rc.file, model, out, want)
		}
		if !strings.Contains(errs, "achieved tok/s:") {
			t.Errorf("no tok/s line on stderr: %q", errs)
		}
	}
}

func TestRunReferenceLegacyBin(t *testing.T) {
	checkReference(t, sharedPath("models", "stories260K.bin"), "-z", sharedPath("models", "tok512.bin"))
}

func TestRunUsageErrors(t *testing.T) {
	model := sharedPath("models", "stories260K.bin")
	for _, args := range [][]string{
		{"run", model, "-t"},
		{"run", model, "-x", "1"},
		{"run", model, "-t", "abc"},
		{"run", model, "--temp", "1"},
		{"frobnicate"},
	} {
		out, errs, code := runCLI(t, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "mote: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	// a model without a tokenizer is an error, not a crash
	_, errs, code := runCLI(t, "run", model, "-n", "5")
	if code != 1 || !strings.Contains(errs, "-z") {
		t.Errorf("missing tokenizer: exit %d, %q", code, errs)
	}
}

func TestRunReferenceGGUF(t *testing.T) {
	checkReference(t, sharedPath("models", "stories260K.gguf"))
}

// -z replaces the tokenizer a model carries.
func TestRunReferenceGGUFWithTokenizer(t *testing.T) {
	checkReference(t, sharedPath("models", "stories260K.gguf"), "-z", sharedPath("models", "tok512.bin"))
}

// The container converted from either source prints the reference's bytes
// with no -z (it carries the tokenizer).
func TestRunReferenceContainer(t *testing.T) {
	dir := t.TempDir()
	for _, src := range [][]string{
		{sharedPath("models", "stories260K.bin"), "-z", sharedPath("models", "tok512.bin")},
		{sharedPath("models", "stories260K.gguf")},
	} {
		out := filepath.Join(dir, filepath.Base(src[0])+".mote")
		args := append([]string{"convert", src[0], out}, src[1:]...)
		if _, errs, code := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		checkReference(t, out)
	}
}
