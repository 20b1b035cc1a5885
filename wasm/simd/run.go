package simd

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Kernels is the assembled SIMD kernel module (kernels.wat).
//
//go:embed kernels.wasm
var Kernels []byte

// ImportModule is the module name core imports the kernels from.
const ImportModule = "mote_simd"

// kernelFuncs are the kernel exports core imports, with their parameters
// (i32 unless f32 says otherwise: the attention's last parameter).
var kernelFuncs = []struct {
	name   string
	params int
	f32    bool // last parameter is f32
	result bool // returns an i32
}{{"matvec_f32", 6, false, false}, {"attention", 9, true, false}, {"matvec_q8", 9, false, false}, {"matvec_q4", 10, false, false},
	{"quantize_q8", 5, false, false}, {"softmax", 2, false, false}, {"swiglu", 3, false, false}, {"argmax", 2, false, true}}

// wazeroKernel names the kernel export a Go import is bound to under
// wazero, where it differs from the import's name: the int8 matrix-vector
// product has a variant that wazero's compiler runs faster (7.5 against 5.8
// GMAC/s, BenchmarkMatVecQ8) and V8 slower; both give the same bits.
var wazeroKernel = map[string]string{"matvec_q8": "matvec_q8_wide"}

func kernelExport(name string) string {
	if k, ok := wazeroKernel[name]; ok {
		return k
	}
	return name
}

// RunWASI runs a wasip1 command module to completion in rt and returns its
// exit code. When the module imports the SIMD kernels, they are provided.
// rt must have WASI instantiated. The module config's name is replaced.
func RunWASI(ctx context.Context, rt wazero.Runtime, guest wazero.CompiledModule, cfg wazero.ModuleConfig) (int, error) {
	needs := false
	for _, f := range guest.ImportedFunctions() {
		if mod, _, _ := f.Import(); mod == ImportModule {
			needs = true
		}
	}
	if !needs {
		_, err := rt.InstantiateModule(ctx, guest, cfg)
		return exitCode(err)
	}
	// host trampolines, pointing at the kernel instance once it exists
	var kernel api.Module
	hb := rt.NewHostModuleBuilder(ImportModule)
	for _, kf := range kernelFuncs {
		name := kf.name
		params := make([]api.ValueType, kf.params)
		for i := range params {
			params[i] = api.ValueTypeI32
		}
		if kf.f32 {
			params[len(params)-1] = api.ValueTypeF32
		}
		var results []api.ValueType
		if kf.result {
			results = []api.ValueType{api.ValueTypeI32}
		}
		var fn api.Function
		hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			if fn == nil {
				fn = kernel.ExportedFunction(kernelExport(name))
			}
			if err := fn.CallWithStack(ctx, stack); err != nil {
				panic(err)
			}
		}), params, results).Export(name)
	}
	host, err := hb.Instantiate(ctx)
	if err != nil {
		return -1, fmt.Errorf("simd trampolines: %w", err)
	}
	defer host.Close(ctx)
	// the Go module is named "env" so that the kernels' ("env", "memory") import finds it
	mod, err := rt.InstantiateModule(ctx, guest, cfg.WithName("env").WithStartFunctions())
	if err != nil {
		return -1, err
	}
	defer mod.Close(ctx)
	kmod, err := rt.CompileModule(ctx, Kernels)
	if err != nil {
		return -1, fmt.Errorf("simd kernels: %w", err)
	}
	kernel, err = rt.InstantiateModule(ctx, kmod, wazero.NewModuleConfig().WithName("mote_simd_kernels"))
	if err != nil {
		return -1, fmt.Errorf("simd kernels: %w", err)
	}
	defer kernel.Close(ctx)
	// a guest built against a newer kernel set fails here, not in a call
	for _, f := range guest.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod == ImportModule && kernel.ExportedFunction(kernelExport(name)) == nil {
			return -1, fmt.Errorf("simd kernels: the module imports %s.%s, which this kernel module does not export as %s (rebuild both from one tree)", mod, name, kernelExport(name))
		}
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	return exitCode(err)
}

// exitCode turns a WASI exit into a code; other errors pass through.
func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		return int(ee.ExitCode()), nil
	}
	return -1, err
}

// NewRuntime returns a compiler-engine wazero runtime with WASI, caching
// compiled code in cacheDir when it is not empty.
func NewRuntime(ctx context.Context, cacheDir string) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfigCompiler()
	if cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, err
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return rt, nil
}
