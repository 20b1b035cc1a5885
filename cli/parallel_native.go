//go:build !wasm

package cli

import (
	"runtime"
	"sync"

	"mote/core"
)

// rowSplitter runs a matrix-vector product's rows on all cores.
type rowSplitter struct {
	n  int
	wg sync.WaitGroup
}

func newParallel() core.Parallel {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return nil
	}
	return &rowSplitter{n: n}
}

func (p *rowSplitter) Do(rows int, job *core.MatVecJob) {
	chunk := (rows + p.n - 1) / p.n
	for r0 := chunk; r0 < rows; r0 += chunk {
		p.wg.Add(1)
		go func(r0, r1 int) {
			job.Run(r0, r1)
			p.wg.Done()
		}(r0, min(r0+chunk, rows))
	}
	job.Run(0, min(chunk, rows))
	p.wg.Wait()
}
