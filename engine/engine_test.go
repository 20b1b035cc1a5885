package engine

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mote/models"
)

var shared = filepath.Join("..", "..", "shared")

func readShared(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{shared}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refCase is one command line of ../shared/reference/README.md.
type refCase struct {
	file   string
	prompt string
	opts   Options
}

var refCases = []refCase{
	{"greedy_once_upon_a_time.txt", "Once upon a time", Options{Temperature: 0, TopP: 0.9, Steps: 256, Seed: 1}},
	{"greedy_lily_and_ben.txt", "Lily and Ben", Options{Temperature: 0, TopP: 0.9, Steps: 256, Seed: 1}},
	{"seed42_once_upon_a_time.txt", "Once upon a time", Options{Temperature: 1, TopP: 0.9, Steps: 256, Seed: 42}},
	{"test_all_noprompt_n200.txt", "", Options{Temperature: 0, TopP: 0.9, Steps: 200, Seed: 1}},
}

// newEngine loads stories260K.bin with tok512.bin as "s".
func newEngine(t testing.TB, lim Limits) *Engine {
	t.Helper()
	e := New(lim)
	if _, err := e.Load("s", readShared(t, "models", "stories260K.bin"), readShared(t, "models", "tok512.bin")); err != nil {
		t.Fatal(err)
	}
	return e
}

// generate runs a session to its end and returns its text and reason.
func generate(t testing.TB, s *Session) (string, Reason, int) {
	t.Helper()
	var sb strings.Builder
	n := 0
	for {
		st := s.Next()
		if st.Done {
			if st.Token != -1 || st.Text != "" {
				t.Errorf("done step carries token %d text %q", st.Token, st.Text)
			}
			return sb.String(), st.Reason, n
		}
		n++
		sb.WriteString(st.Text)
	}
}

func TestReference(t *testing.T) {
	e := newEngine(t, Limits{})
	for _, c := range refCases {
		t.Run(c.file, func(t *testing.T) {
			want := string(readShared(t, "reference", c.file))
			s, err := e.Start("s", c.prompt, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, reason, n := generate(t, s)
			if got+"\n" != want {
				t.Errorf("text differs from the reference\n got: %q\nwant: %q", got+"\n", want)
			}
			// ReasonLength exactly when every position was used.
			if (reason == ReasonLength) != (n == s.Steps()) || reason == ReasonNone || reason == ReasonStopped {
				t.Errorf("reason %q after %d tokens of %d steps", reason, n, s.Steps())
			}
			if e.Sessions() != 0 {
				t.Errorf("%d sessions left after the end", e.Sessions())
			}
			if _, err := e.Next(s.ID()); !errors.Is(err, ErrNoSession) {
				t.Errorf("Next after the end: %v, want ErrNoSession", err)
			}
			if st := s.Next(); !st.Done || st.Reason != reason {
				t.Errorf("Next on the ended session: %+v", st)
			}
		})
	}
}

// TestInterleaved runs all reference cases at once, one token each in turn,
// and twice each, so sessions of one model share nothing but weights.
func TestInterleaved(t *testing.T) {
	e := newEngine(t, Limits{})
	type run struct {
		c    refCase
		s    *Session
		text strings.Builder
		done bool
	}
	var runs []*run
	for i := 0; i < 2; i++ {
		for _, c := range refCases {
			s, err := e.Start("s", c.prompt, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, &run{c: c, s: s})
		}
	}
	for left := len(runs); left > 0; {
		for _, r := range runs {
			if r.done {
				continue
			}
			st, err := e.Next(r.s.ID())
			if err != nil {
				t.Fatal(err)
			}
			if st.Done {
				r.done = true
				left--
				continue
			}
			r.text.WriteString(st.Text)
		}
	}
	for _, r := range runs {
		if want := string(readShared(t, "reference", r.c.file)); r.text.String()+"\n" != want {
			t.Errorf("%s (session %d) differs when interleaved:\n got: %q\nwant: %q", r.c.file, r.s.ID(), r.text.String()+"\n", want)
		}
	}
}

// TestConcurrent runs sessions from several goroutines (meaningful under -race).
func TestConcurrent(t *testing.T) {
	e := newEngine(t, Limits{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		c := refCases[i%len(refCases)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.Start("s", c.prompt, c.opts)
			if err != nil {
				errs <- err
				return
			}
			var sb strings.Builder
			for st := s.Next(); !st.Done; st = s.Next() {
				sb.WriteString(st.Text)
			}
			if want := string(readShared(t, "reference", c.file)); sb.String()+"\n" != want {
				errs <- fmt.Errorf("%s differs when run concurrently", c.file)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNextAllocs(t *testing.T) {
	e := newEngine(t, Limits{})
	for _, o := range []Options{{Temperature: 0, Steps: 0, Seed: 1}, {Temperature: 1, TopP: 0.9, Steps: 0, Seed: 7}, {Temperature: 0.8, TopP: 1, Seed: 7}} {
		s, err := e.Start("s", "Once upon a time", o)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 8; i++ { // warm up, past the prompt
			s.Next()
		}
		var done bool
		if a := testing.AllocsPerRun(50, func() { done = s.Next().Done || done }); a != 0 {
			t.Errorf("%+v: Session.Next allocates %v times per token", o, a)
		}
		if a := testing.AllocsPerRun(50, func() {
			st, _ := e.Next(s.ID())
			done = st.Done || done
		}); a != 0 {
			t.Errorf("%+v: Engine.Next allocates %v times per token", o, a)
		}
		if done {
			t.Errorf("%+v: the session ended during the measurement; measure on a longer one", o)
		}
		s.Stop()
	}
}

func TestStop(t *testing.T) {
	e := newEngine(t, Limits{})
	s, err := e.Start("s", "Once upon a time", Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if st := s.Next(); st.Done {
			t.Fatalf("ended early: %+v", st)
		}
	}
	if !e.Stop(s.ID()) {
		t.Error("Stop of a running session reported false")
	}
	if st := s.Next(); !st.Done || st.Reason != ReasonStopped {
		t.Errorf("Next after Stop: %+v", st)
	}
	if e.Stop(s.ID()) {
		t.Error("second Stop reported true")
	}
	if e.Sessions() != 0 || s.Pos() != 0 {
		t.Errorf("sessions %d, pos %d after Stop", e.Sessions(), s.Pos())
	}
}

func TestSteps(t *testing.T) {
	e := newEngine(t, Limits{})
	seq := 512 // stories260K's context
	for _, c := range []struct{ steps, want int }{{0, seq}, {1, 1}, {5, 5}, {seq, seq}, {seq + 1, seq}, {1 << 40, seq}} {
		s, err := e.Start("s", "Once upon a time", Options{Steps: c.steps, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if s.Steps() != c.want {
			t.Errorf("steps %d: session has %d, want %d", c.steps, s.Steps(), c.want)
		}
		if c.steps > 0 && c.steps <= 5 {
			// fewer steps than prompt tokens: the prompt is cut, as llama2.c does
			text, reason, n := generate(t, s)
			want := string(readShared(t, "reference", "greedy_once_upon_a_time.txt"))
			if n != c.want || reason != ReasonLength || !strings.HasPrefix(want, text) {
				t.Errorf("steps %d: %d tokens, reason %q, text %q", c.steps, n, reason, text)
			}
		}
		s.Stop()
	}
}

func TestSeedFromClock(t *testing.T) {
	e := newEngine(t, Limits{})
	s, err := e.Start("s", "Lily", Options{Temperature: 1, TopP: 0.9, Steps: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Seed() <= 0 || s.Seed() > MaxSeed {
		t.Fatalf("clock seed %d outside 1..MaxSeed", s.Seed())
	}
	first, _, _ := generate(t, s)
	again, err := e.Start("s", "Lily", Options{Temperature: 1, TopP: 0.9, Steps: 64, Seed: s.Seed()})
	if err != nil {
		t.Fatal(err)
	}
	if second, _, _ := generate(t, again); second != first {
		t.Errorf("rerun with the reported seed %d differs:\n%q\n%q", s.Seed(), first, second)
	}
}

func TestUnloadWhileRunning(t *testing.T) {
	e := newEngine(t, Limits{})
	c := refCases[0]
	s, err := e.Start("s", c.prompt, c.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Unload("s"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("s", "x", Options{}); !errors.Is(err, ErrNoModel) {
		t.Errorf("Start after Unload: %v", err)
	}
	if got, _, _ := generate(t, s); got+"\n" != string(readShared(t, "reference", c.file)) {
		t.Error("a session running when its model was unloaded changed its output")
	}
}

func TestModelInfo(t *testing.T) {
	e := New(Limits{})
	tok := readShared(t, "models", "tok512.bin")
	bin := readShared(t, "models", "stories260K.bin")
	mi, err := e.Load("fp32", bin, tok)
	if err != nil {
		t.Fatal(err)
	}
	c := mi.Config
	if c.Dim != 64 || c.HiddenDim != 172 || c.NLayers != 5 || c.NHeads != 8 || c.NKVHeads != 4 || c.VocabSize != 512 || c.SeqLen != 512 {
		t.Errorf("config %+v", c)
	}
	if mi.Name != "fp32" || mi.Format != models.FormatLlama2c || mi.FileBytes != int64(len(bin)) ||
		mi.DType != "f32" || mi.GroupSize != 0 || mi.Params != 260032 || mi.Tokenizer != "separate" {
		t.Errorf("info %+v", mi)
	}
	q8 := readShared(t, "models", "stories260K_q80_gs4.bin")
	mi, err = e.Load("q8", q8, tok)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Format != models.FormatAK42 || mi.Version != 2 || mi.DType != "q8" || mi.GroupSize != 4 {
		t.Errorf("q8 info %+v", mi)
	}
	if ms := e.Models(); len(ms) != 2 || ms[0].Name != "fp32" || ms[1].Name != "q8" {
		t.Errorf("Models() = %+v", ms)
	}
}

func TestBadInput(t *testing.T) {
	tok := readShared(t, "models", "tok512.bin")
	bin := readShared(t, "models", "stories260K.bin")
	e := newEngine(t, Limits{MaxModels: 2, MaxSessions: 2, MaxPromptBytes: 32})

	loads := []struct {
		name      string
		data, tok []byte
		want      error
		msg       string
	}{
		{"", bin, tok, ErrBadInput, "model name"},
		{strings.Repeat("n", 200), bin, tok, ErrBadInput, "model name"},
		{"empty", nil, tok, ErrBadInput, "no bytes"},
		{"s", bin, tok, ErrExists, `"s"`},
		{"junk", []byte("this is not a model file at all, just text"), tok, models.ErrBadMagic, "junk"},
		{"cut", bin[:len(bin)/2], tok, models.ErrBadMagic, "implies 1056540 bytes"},
		{"notok", bin, nil, ErrNoTokenizer, "tok512.bin"},
		{"badtok", bin, tok[:len(tok)-10], models.ErrTruncated, "badtok tokenizer"},
	}
	for _, c := range loads {
		_, err := e.Load(c.name, c.data, c.tok)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Load(%.20q): %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
	}
	if _, err := e.Load("second", bin, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load("third", bin, tok); !errors.Is(err, ErrLimit) {
		t.Errorf("third model: %v, want ErrLimit", err)
	}

	nan := float32(math.NaN())
	starts := []struct {
		model, prompt string
		o             Options
		want          error
		msg           string
	}{
		{"nope", "x", Options{}, ErrNoModel, `"nope"`},
		{"s", strings.Repeat("x", 33), Options{}, ErrBadInput, "prompt of 33 bytes"},
		{"s", "x", Options{Temperature: -0.1}, ErrBadInput, "temperature"},
		{"s", "x", Options{Temperature: nan}, ErrBadInput, "temperature"},
		{"s", "x", Options{Temperature: 101}, ErrBadInput, "temperature"},
		{"s", "x", Options{TopP: 1.5}, ErrBadInput, "topp"},
		{"s", "x", Options{TopP: nan}, ErrBadInput, "topp"},
		{"s", "x", Options{Seed: -1}, ErrBadInput, "seed"},
		{"s", "x", Options{Seed: MaxSeed + 1}, ErrBadInput, "seed"},
		{"s", "x", Options{Steps: -1}, ErrBadInput, "steps"},
	}
	for _, c := range starts {
		if _, err := e.Start(c.model, c.prompt, c.o); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Start(%q, %.10q, %+v): %v, want %v mentioning %q", c.model, c.prompt, c.o, err, c.want, c.msg)
		}
	}
	var ss []*Session
	for i := 0; i < 2; i++ {
		s, err := e.Start("s", strings.Repeat("y", 32), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if _, err := e.Start("s", "x", Options{}); !errors.Is(err, ErrLimit) {
		t.Errorf("third session: %v, want ErrLimit", err)
	}
	ss[0].Stop()
	if _, err := e.Start("s", "x", Options{}); err != nil {
		t.Errorf("a stopped session still counts against the limit: %v", err)
	}
	if _, err := e.Next(12345); !errors.Is(err, ErrNoSession) {
		t.Errorf("Next(unknown): %v", err)
	}
	if e.Stop(12345) {
		t.Error("Stop(unknown) reported true")
	}
	if err := e.Unload("nope"); !errors.Is(err, ErrNoModel) {
		t.Errorf("Unload(unknown): %v", err)
	}
}

// BenchmarkSessionNext is one decode step of stories260K, natively (session
// starts excluded from the timing; -benchmem must show 0 allocs/op).
func BenchmarkSessionNext(b *testing.B) {
	e := newEngine(b, Limits{})
	start := func() *Session {
		s, err := e.Start("s", "Once upon a time", Options{Steps: 0, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := start()
	b.ReportAllocs()
	for b.Loop() {
		if s.Next().Done {
			b.StopTimer()
			s = start()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}
