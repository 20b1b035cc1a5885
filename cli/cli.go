package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const usage = `mote: tiny quantized language models

usage:
  mote run [MODEL] [-z TOKENIZER] [-t TEMP] [-p TOPP] [-s SEED] [-n STEPS] [-i PROMPT]
  mote convert IN OUT [--compress none|zstd|tensor] [--level N] [--f16-scales] [-z TOKENIZER]
  mote info [MODEL] [-z TOKENIZER]
  mote eval MODEL [--base BASE [--base-tokenizer TOK]] --text FILE [--ctx N | --docs [--max-ctx N]] [--json]
  mote quant IN -o OUT --type TYPE [--calib TEXT] [--policy FILE]
  mote prune IN -o OUT [--ffn F] [--heads F] [--layers N] [--vocab TEXT] [--sparsity F [--nm N:M]]
  mote pull NAME|URL
  mote bench [MODEL | --shape 260K|15M|42M|110M] [--type f32|q8|q4] [--target native|wasip1]
             [-n TOKENS] [--runs N] [--json]
  mote embed ENCODER (-i TEXT | --file LINES | --bench) [--json] [--truncate]
  mote similar ENCODER A B [--json]
  mote classify ENCODER (--labels "a,b,c" | --head HEAD) (-i TEXT | --file LINES) [--json]
  mote classify train ENCODER --data LABELED.tsv -o HEAD [--split 0.8] [--max-tokens N]

MODEL is any file mote reads (llama2.c .bin, GGUF, .mote); without one, the
default model is used (MOTE_MODEL, or dist/models/stories260K.mote).
ENCODER is a sentence encoder: a GGUF bert model or a .mote encoder (docs/EMBED.md).
`

// errUsage marks an error in the command line (exit code 2).
var errUsage = errors.New("usage")

// Main runs the command line args (without the program name) and returns
// the process exit code: 0 success, 1 failure, 2 bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "convert":
		err = cmdConvert(args[1:], stdout, stderr)
	case "info":
		err = cmdInfo(args[1:], stdout, stderr)
	case "eval":
		err = cmdEval(args[1:], stdout, stderr)
	case "quant":
		err = cmdQuant(args[1:], stdout, stderr)
	case "prune":
		err = cmdPrune(args[1:], stdout, stderr)
	case "pull":
		err = cmdPull(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "embed":
		err = cmdEmbed(args[1:], stdout, stderr)
	case "similar":
		err = cmdSimilar(args[1:], stdout, stderr)
	case "classify":
		err = cmdClassify(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "mote: %s\n", msg)
	if errors.Is(err, errUsage) {
		fmt.Fprint(stderr, "run 'mote help' for usage\n")
		return 2
	}
	return 1
}

// DefaultModel finds the default model: $MOTE_MODEL, else
// dist/models/stories260K.mote beside the binary's bin/ folder, in the
// working directory, or at the root of a WASI mount.
func DefaultModel() (string, error) {
	if p := os.Getenv("MOTE_MODEL"); p != "" {
		return p, nil
	}
	var tries []string
	if exe, err := os.Executable(); err == nil {
		tries = append(tries, filepath.Join(filepath.Dir(exe), "..", "dist", "models", defaultModelFile))
	}
	tries = append(tries, filepath.Join("dist", "models", defaultModelFile), "/"+defaultModelFile)
	for _, p := range tries {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no model given and the default model was not found (tried %s); run ./build.sh to fetch it, or set MOTE_MODEL",
		strings.Join(tries, ", "))
}

const defaultModelFile = "stories260K.mote"

// modelArg splits an optional leading MODEL argument from flags.
func modelArg(args []string) (string, []string, error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:], nil
	}
	p, err := DefaultModel()
	return p, args, err
}
