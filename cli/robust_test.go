package cli

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildMote builds the native command once per test binary.
func buildMote(t *testing.T) string {
	t.Helper()
	moteOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mote-bin")
		if err != nil {
			moteErr = err
			return
		}
		moteBin = filepath.Join(dir, "mote")
		out, err := exec.Command("go", "build", "-o", moteBin, "../cmd/mote").CombinedOutput()
		if err != nil {
			moteErr = &buildError{err, out}
		}
	})
	if moteErr != nil {
		t.Fatal(moteErr)
	}
	return moteBin
}

// corruptions derives bad files from a good model file.
func corruptions(good []byte) map[string][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	bad := map[string][]byte{
		"empty":       {},
		"one-byte":    good[:1],
		"header-only": good[:min(40, len(good))],
		"half":        good[:len(good)/2],
		"minus-one":   good[:len(good)-1],
		"plus-one":    append(append([]byte{}, good...), 0),
		"wrong-magic": append([]byte("NOPE"), good[4:]...),
	}
	rnd := make([]byte, 1<<16)
	for i := range rnd {
		rnd[i] = byte(r.IntN(256))
	}
	bad["random"] = rnd
	for i := 0; i < 6; i++ {
		f := append([]byte{}, good...)
		// flip bits in the header region and in the data
		pos := r.IntN(min(len(f), 64))
		if i%2 == 1 {
			pos = r.IntN(len(f))
		}
		f[pos] ^= byte(1 << r.IntN(8))
		bad["flip-"+string(rune('a'+i))] = f
	}
	// absurd dimensions: every header int32 set to a huge or negative value
	for i, v := range [][4]byte{{0xff, 0xff, 0xff, 0x7f}, {0, 0, 0, 0x80}, {0, 0, 0x10, 0}} {
		for field := 0; field < 7 && 4*field+4 <= len(good); field++ {
			f := append([]byte{}, good...)
			off := 4 * field
			if string(good[:4]) == "GGUF" || string(good[:4]) == "MOTE" {
				off = 8 + 4*field // counts after magic and version
			}
			copy(f[off:], v[:])
			bad["absurd-"+string(rune('a'+i))+string(rune('0'+field))] = f
		}
	}
	return bad
}

// Every corrupt file must end in a one-line error and exit code 1, quickly,
// within a 4 GB address space: never a panic, a hang or an out-of-memory.
func TestBadModelFilesFailCleanly(t *testing.T) {
	bin := buildMote(t)
	dir := t.TempDir()
	sources := []string{sharedPath("models", "stories260K.bin"), sharedPath("models", "stories260K.gguf"),
		sharedPath("models", "stories260K_q80_gs4.bin")}
	// our container, when the converter can write it
	conv := filepath.Join(dir, "stories260K.mote")
	if out, err := exec.Command(bin, "convert", sharedPath("models", "stories260K.gguf"), conv).CombinedOutput(); err != nil {
		t.Fatalf("convert: %v: %s", err, out)
	}
	sources = append(sources, conv)
	tok := sharedPath("models", "tok512.bin")
	for _, src := range sources {
		good, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range corruptions(good) {
			p := filepath.Join(dir, filepath.Base(src)+"."+name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"run", p, "-z", tok, "-n", "8", "-t", "0"}, {"info", p}} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				cmd := exec.CommandContext(ctx, "bash", "-c", `ulimit -v 4194304 && exec "$@"`, "bash", bin)
				cmd.Args = append(cmd.Args, args...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				start := time.Now()
				err := cmd.Run()
				cancel()
				code := cmd.ProcessState.ExitCode()
				el := time.Since(start)
				msg := strings.TrimRight(stderr.String(), "\n")
				// a flipped bit in a weight may leave a valid file (legacy
				// formats have no checksum): then the run succeeds.
				if code == 0 && strings.HasPrefix(name, "flip-") {
					continue
				}
				// GGUF allows bytes after the last tensor (llama.cpp ignores them)
				if code == 0 && name == "plus-one" && strings.HasSuffix(src, ".gguf") {
					continue
				}
				if code != 1 || strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "mote: ") ||
					strings.Contains(msg, "panic") || stdout.Len() != 0 && args[0] == "run" {
					t.Errorf("%s %s: exit %d (%v) after %v\nstdout %q\nstderr %q", args[0], filepath.Base(p), code, err, el, stdout.String(), stderr.String())
				}
				if el > 10*time.Second {
					t.Errorf("%s %s: took %v", args[0], filepath.Base(p), el)
				}
			}
		}
	}
}
