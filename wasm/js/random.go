//go:build js && wasm

package main

import (
	"fmt"
	"math"
	"syscall/js"
)

// random(name, shape, dtype, groupSize, seed, tokenizerBytes) -> info
// keeps a model of shape core.Shapes[shape] with seeded random weights (see
// engine.LoadRandom): the browser benchmarks measure the 15M shape with it.
func random(args []js.Value) (any, error) {
	if len(args) != 6 {
		return nil, fmt.Errorf("%w: random(name, shape, dtype, groupSize, seed, tokenizerBytes) takes 6 arguments, got %d", errArg, len(args))
	}
	name, err := str(args, 0, "name")
	if err != nil {
		return nil, err
	}
	shape, err := str(args, 1, "shape")
	if err != nil {
		return nil, err
	}
	dtype, err := str(args, 2, "dtype")
	if err != nil {
		return nil, err
	}
	var n [2]int
	for i, what := range []string{"groupSize", "seed"} {
		v := args[3+i]
		if v.Type() != js.TypeNumber || v.Float() != math.Trunc(v.Float()) || v.Float() < 0 || v.Float() > math.MaxInt32 {
			return nil, fmt.Errorf("%w: %s must be a whole number, got %v", errArg, what, v)
		}
		n[i] = v.Int()
	}
	tok, err := byteArg(args[5], "tokenizer")
	if err != nil {
		return nil, err
	}
	mi, err := eng.LoadRandom(name, shape, dtype, n[0], uint64(n[1]), tok)
	if err != nil {
		return nil, err
	}
	return info(mi), nil
}
