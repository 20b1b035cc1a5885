//go:build !wasm

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"

	"mote/wasm/simd"
)

// peakBytes is the process's peak resident memory (VmHWM), or 0.
func peakBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// benchWasip1 runs the same benchmark inside the SIMD WASI build
// (dist/mote-simd.wasm) under wazero and returns its result.
func benchWasip1(o benchOpts, args []string, stderr io.Writer) (*benchResult, error) {
	guestPath, err := findDist("mote-simd.wasm")
	if err != nil {
		return nil, err
	}
	guest, err := os.ReadFile(guestPath)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	cache := filepath.Join(os.TempDir(), "mote-wazero-cache")
	rt, err := simd.NewRuntime(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, guest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", guestPath, err)
	}
	// the guest runs the native target inside itself
	gargs := []string{"mote", "bench", "--json", "--target", "native"}
	mount := "/"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--target" || a == "-target":
			i++
		case strings.HasPrefix(a, "--target=") || a == "--json" || a == "-json":
		default:
			gargs = append(gargs, a)
		}
	}
	if o.model != "" {
		abs, err := filepath.Abs(o.model)
		if err != nil {
			return nil, err
		}
		mount = filepath.Dir(abs)
		for i, a := range gargs {
			if a == o.model {
				gargs[i] = "/" + filepath.Base(abs)
			}
		}
	}
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs(gargs...).WithStdout(&out).WithStderr(stderr).
		WithSysWalltime().WithSysNanotime().
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(mount, "/"))
	code, err := simd.RunWASI(ctx, rt, cm, cfg)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%s exited with %d", guestPath, code)
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("reading the guest's result %q: %w", out.String(), err)
	}
	r.Target = "wasip1"
	return &r, nil
}

// findDist locates a build output in dist/ beside bin/ or the working directory.
func findDist(name string) (string, error) {
	var tries []string
	if exe, err := os.Executable(); err == nil {
		tries = append(tries, filepath.Join(filepath.Dir(exe), "..", "dist", name))
	}
	tries = append(tries, filepath.Join("dist", name))
	for _, p := range tries {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (tried %s); run ./build.sh", name, strings.Join(tries, ", "))
}

// benchCell runs one benchmark in a fresh process of this binary, so that
// its peak memory is its own.
func benchCell(args []string, stderr io.Writer) (*benchResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(exe, append([]string{"bench", "--json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %w", cmd.Args, err)
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("reading %q: %w", out.String(), err)
	}
	return &r, nil
}
