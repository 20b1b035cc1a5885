package cli

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"

	"mote/core"
	"mote/models"
)

// runOpts are llama2.c's run flags, with its defaults.
type runOpts struct {
	model, tokenizer string
	temperature      float32
	topp             float32
	seed             int64
	steps            int
	prompt           string
}

func parseRun(args []string) (runOpts, error) {
	o := runOpts{temperature: 1, topp: 0.9, steps: 256}
	var err error
	o.model, args, err = modelArg(args)
	if err != nil {
		return o, err
	}
	for i := 0; i < len(args); i += 2 {
		flag := args[i]
		if len(flag) != 2 || flag[0] != '-' {
			return o, fmt.Errorf("%w: expected a flag like -t, got %q", errUsage, flag)
		}
		if i+1 >= len(args) {
			return o, fmt.Errorf("%w: flag %s needs a value", errUsage, flag)
		}
		val := args[i+1]
		var perr error
		switch flag[1] {
		case 't':
			o.temperature, perr = parseF32(val)
		case 'p':
			o.topp, perr = parseF32(val)
		case 's':
			o.seed, perr = strconv.ParseInt(val, 10, 64)
		case 'n':
			o.steps, perr = strconv.Atoi(val)
		case 'i':
			o.prompt = val
		case 'z':
			o.tokenizer = val
		default:
			return o, fmt.Errorf("%w: unknown flag %s", errUsage, flag)
		}
		if perr != nil {
			return o, fmt.Errorf("%w: bad value %q for %s", errUsage, val, flag)
		}
	}
	// the reference's overrides
	if o.temperature < 0 {
		o.temperature = 0
	}
	if o.topp < 0 || o.topp > 1 {
		o.topp = 0.9
	}
	if o.steps < 0 {
		o.steps = 0
	}
	if o.seed <= 0 {
		o.seed = time.Now().Unix()
	}
	return o, nil
}

func parseF32(s string) (float32, error) {
	v, err := strconv.ParseFloat(s, 32)
	return float32(v), err
}

// loadModel opens a model and makes sure it has a tokenizer.
func loadModel(path, tokenizer string) (*core.Model, *models.Info, error) {
	m, info, err := models.Open(path, tokenizer)
	if err != nil {
		return nil, nil, err
	}
	if m.Tokenizer == nil {
		return nil, nil, fmt.Errorf("%s: the model carries no tokenizer; give one with -z (e.g. tok512.bin)", path)
	}
	return m, info, nil
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	o, err := parseRun(args)
	if err != nil {
		return err
	}
	m, _, err := loadModel(o.model, o.tokenizer)
	if err != nil {
		return err
	}
	steps := m.Config.Steps(o.steps)
	s := m.NewState(steps)
	s.Par = nativeParallel()
	smp := core.NewSampler(m.Config.VocabSize, o.temperature, o.topp, uint64(o.seed))
	prompt := m.Tokenizer.Encode(o.prompt, true, false)
	g := m.NewGenerator(s, smp, prompt, steps)
	out := bufio.NewWriter(stdout)
	var start time.Time
	for {
		_, text, ok := g.Next()
		if !ok {
			break
		}
		out.WriteString(text)
		out.Flush()
		if start.IsZero() {
			start = time.Now()
		}
	}
	out.WriteString("\n")
	if err := out.Flush(); err != nil {
		return err
	}
	if pos := g.Pos(); pos > 1 {
		el := time.Since(start).Seconds()
		fmt.Fprintf(stderr, "achieved tok/s: %f\n", float64(pos-1)/el)
	}
	return nil
}
