package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mote/core"
	"mote/internal/testmodels"
	"mote/models"
)

// The encoder of these tests: all-MiniLM-L6-v2 Q4_K_M in the Go module
// cache, a read-only folder (as `go mod download` leaves it).
var (
	encOnce sync.Once
	encPath string
	encErr  error
)

func miniLM(t testing.TB) string {
	t.Helper()
	encOnce.Do(func() {
		encPath, encErr = testmodels.MiniLM()
	})
	if encErr != nil {
		t.Fatal(encErr)
	}
	return encPath
}

// embedJSON is the one line `mote embed --json` prints.
type embedJSON struct {
	Embedding []float32 `json:"embedding"`
	Tokens    int       `json:"tokens"`
}

func parseEmbedJSON(t *testing.T, line string) embedJSON {
	t.Helper()
	var e embedJSON
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not the JSON line of the issue: %v\n%.200s", err, line)
	}
	return e
}

func TestEmbedJSONMatchesReference(t *testing.T) {
	model := miniLM(t)
	if st, err := os.Stat(filepath.Dir(model)); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Logf("note: %s is writable here (the module cache is usually read-only)", filepath.Dir(model))
	}
	var ref struct {
		Items []struct {
			Text      string
			TokenIDs  []int     `json:"token_ids"`
			Embedding []float32 `json:"embedding"`
		}
	}
	b, err := os.ReadFile(sharedPath("reference", "minilm", "embeddings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for _, it := range ref.Items {
		out, errs, code := runCLI(t, "embed", model, "-i", it.Text, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") || strings.Contains(out, " ") {
			t.Fatalf("want one compact line, got %.200q", out)
		}
		e := parseEmbedJSON(t, out)
		if e.Tokens != len(it.TokenIDs) || len(e.Embedding) != 384 {
			t.Errorf("%q: %d tokens, %d values; want %d tokens ([CLS] and [SEP] counted), 384 values", it.Text, e.Tokens, len(e.Embedding), len(it.TokenIDs))
		}
		if c := core.Cosine(e.Embedding, it.Embedding); c < 0.999 {
			t.Errorf("%q: cosine %.6f to llama.cpp's vector", it.Text, c)
		}
	}
}

func TestEmbedFileAndPlain(t *testing.T) {
	model := miniLM(t)
	lines := []string{"The cat sat on the mat.", "", "Deux chats noirs.", "[MASK] is special"}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "embed", model, "--file", file, "--json", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("%d output lines for %d input lines", len(got), len(lines))
	}
	for i, l := range lines {
		one, _, _ := runCLI(t, "embed", model, "-i", l, "--json") // all cores: the same bits
		if one != got[i]+"\n" {
			t.Errorf("line %d: --file and -i (and one core and all) differ", i+1)
		}
	}
	// the plain form: the same values, space-separated
	plain, _, code := runCLI(t, "embed", model, "-i", lines[0])
	fields := strings.Fields(plain)
	e := parseEmbedJSON(t, got[0])
	if code != 0 || len(fields) != 384 {
		t.Fatalf("plain output: exit %d, %d fields", code, len(fields))
	}
	for j, f := range fields {
		v, err := strconv.ParseFloat(f, 32)
		if err != nil || float32(v) != e.Embedding[j] {
			t.Fatalf("plain value %d = %q, JSON %v", j, f, e.Embedding[j])
		}
	}
	if e := parseEmbedJSON(t, got[1]); e.Tokens != 2 {
		t.Errorf("an empty line is [CLS] [SEP]: %d tokens", e.Tokens)
	}
	if e := parseEmbedJSON(t, got[3]); e.Tokens != 5 { // [CLS] [MASK] is special [SEP]
		t.Errorf("[MASK] is one token: %d tokens", e.Tokens)
	}
	lit, _, _ := runCLI(t, "embed", model, "-i", lines[3], "--json", "--literal")
	if e := parseEmbedJSON(t, lit); e.Tokens <= 5 {
		t.Errorf("--literal: %d tokens", e.Tokens)
	}
}

func TestEmbedErrors(t *testing.T) {
	model := miniLM(t)
	long := strings.Repeat("word ", 600)
	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"embed"}, 2, "needs one MODEL"},
		{[]string{"embed", model}, 2, "takes -i TEXT"},
		{[]string{"embed", model, "-i", "x", "--file", "y"}, 2, "takes -i TEXT"},
		{[]string{"embed", model, "-i", "x", "--bogus"}, 2, "unknown flag --bogus"},
		{[]string{"embed", model, "-i", long}, 1, "more than the model's context of 512"},
		{[]string{"embed", sharedPath("models", "stories260K.gguf"), "-i", "x"}, 1, "is not an encoder"},
		{[]string{"embed", filepath.Join(t.TempDir(), "none.gguf"), "-i", "x"}, 1, "no such file"},
		{[]string{"similar", model, "a"}, 2, "two texts"},
		{[]string{"classify", model, "-i", "x"}, 2, "--labels (zero-shot) or --head"},
		{[]string{"classify", model, "--labels", "a", "-i", "x"}, 1, "at least 2 labels"},
		{[]string{"classify", model, "--labels", "a,b", "--temp", "0", "-i", "x"}, 2, "--temp"},
		{[]string{"classify", "train", model, "--data", "x.tsv"}, 2, "-o HEAD"},
	} {
		out, errs, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.say) || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %.40q; want exit %d saying %q", c.args, code, errs, out, c.code, c.say)
		}
	}
	out, errs, code := runCLI(t, "embed", model, "-i", long, "--truncate", "--json")
	if code != 0 || parseEmbedJSON(t, out).Tokens != 512 {
		t.Errorf("--truncate: exit %d %s", code, errs)
	}
}

func TestSimilarAndZeroShot(t *testing.T) {
	model := miniLM(t)
	sim := func(a, b string) float64 {
		out, errs, code := runCLI(t, "similar", model, a, b)
		v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if code != 0 || err != nil {
			t.Fatalf("similar: exit %d %s %q", code, errs, out)
		}
		return v
	}
	close, far := sim("A man is playing a guitar.", "Someone plays music on a guitar."), sim("A man is playing a guitar.", "The stock market fell sharply.")
	if !(close > 0.6 && far < 0.2) {
		t.Errorf("similar: paraphrase %.3f, unrelated %.3f", close, far)
	}
	if s := sim("same text", "same text"); math.Abs(s-1) > 1e-6 {
		t.Errorf("similar(x, x) = %v", s)
	}
	out, _, _ := runCLI(t, "similar", model, "a b", "c", "--json")
	var j struct {
		Similarity float64
		Tokens     []int
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.Tokens) != 2 || j.Tokens[0] != 4 {
		t.Errorf("similar --json: %q %v", out, err)
	}
	for text, want := range map[string]string{
		"The striker scored twice in the cup final.":               "sports",
		"Parliament passed the budget after a long debate.":        "politics",
		"The new phone has a faster chip and a better camera.":     "technology",
		"The goalkeeper was injured during the second half match.": "sports",
	} {
		out, errs, code := runCLI(t, "classify", model, "--labels", "sports, politics, technology", "-i", text, "--json")
		var r struct {
			Label  string
			Labels []string
			Probs  []float64
		}
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("classify: exit %d %s %q", code, errs, out)
		}
		sum := r.Probs[0] + r.Probs[1] + r.Probs[2]
		if r.Label != want || math.Abs(sum-1) > 1e-4 || len(r.Labels) != 3 {
			t.Errorf("%q: %s %v %v, want %s", text, r.Label, r.Labels, r.Probs, want)
		}
	}
}

// TestClassifyTrainAndHead trains a head on real text of two kinds (the
// first sentences of TinyStories stories; lines of the repository's format
// document) and classifies with it. The SpamAssassin demonstration of
// docs/EMBED.md is the same command on a bigger data set.
func TestClassifyTrainAndHead(t *testing.T) {
	model := miniLM(t)
	dir := t.TempDir()
	var data strings.Builder
	stories, err := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range strings.Split(string(stories), "<|endoftext|>") {
		s = strings.TrimSpace(s)
		if i := strings.Index(s, "."); i > 0 && n < 60 {
			fmt.Fprintf(&data, "story\t%s\n", strings.ReplaceAll(s[:i+1], "\n", " "))
			n++
		}
	}
	format, err := os.ReadFile(filepath.Join("..", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := 0
	sc := bufio.NewScanner(strings.NewReader(string(format)))
	for sc.Scan() && m < 60 {
		if l := strings.TrimSpace(sc.Text()); len(l) > 40 && !strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "<!--") {
			fmt.Fprintf(&data, "format\t%s\n", strings.ReplaceAll(l, "\t", " "))
			m++
		}
	}
	tsv := filepath.Join(dir, "data.tsv")
	os.WriteFile(tsv, []byte(data.String()), 0o644)
	head := filepath.Join(dir, "head.mote")
	out, errs, code := runCLI(t, "classify", "train", model, "--data", tsv, "-o", head, "--json", "--max-tokens", "64")
	if code != 0 {
		t.Fatalf("train: exit %d %s", code, errs)
	}
	var r struct {
		Labels             []string
		Train, Test        int
		Accuracy, Majority float64
		BagOfWords         float64 `json:"bag_of_words"`
		HeadBytes          int64   `json:"head_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%d+%d examples: head %.3f, bag of words %.3f, majority %.3f; head file %d bytes", r.Train, r.Test, r.Accuracy, r.BagOfWords, r.Majority, r.HeadBytes)
	if r.Train != 96 || r.Test != 24 || r.Accuracy < 0.9 || r.Accuracy <= r.Majority {
		t.Errorf("report %+v", r)
	}
	hf, err := models.OpenHead(head)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hf.Notes, "encoder: all-MiniLM-L6-v2-Q4_K_M.gguf") || hf.Head.Dim != 384 {
		t.Errorf("head notes %q", hf.Notes)
	}
	for text, want := range map[string]string{
		"Once upon a time, a little dog found a ball in the park.":             "story",
		"Every section header carries a CRC-32C of its kind, length and body.": "format",
	} {
		out, errs, code := runCLI(t, "classify", model, "--head", head, "-i", text)
		if code != 0 || !strings.HasPrefix(out, want+":") {
			t.Errorf("%q: %q (exit %d %s), want %s first", text, out, code, errs, want)
		}
	}
	// human-readable report
	out, _, code = runCLI(t, "classify", "train", model, "--data", tsv, "-o", head, "--max-tokens", "32", "--epochs", "50")
	if code != 0 || !strings.Contains(out, "embedding head") || !strings.Contains(out, "bag of words") {
		t.Errorf("train report: %q", out)
	}
}
