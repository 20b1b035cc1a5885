//go:build !wasm

package cli

import (
	"runtime"
	"sync"

	"mote/core"
)

// rowSplitter runs a matrix-vector product's rows on all cores: the caller
// takes the first share, persistent workers the others. Handing work over a
// channel allocates nothing, so decoding stays allocation-free.
type rowSplitter struct {
	work []chan span
	wg   sync.WaitGroup
}

type span struct {
	job    *core.MatVecJob
	r0, r1 int
}

var (
	splitterOnce sync.Once
	splitter     *rowSplitter
)

// newParallel returns the process's splitter, or nil on one core.
func newParallel() core.Parallel {
	splitterOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		if n < 2 {
			return
		}
		splitter = &rowSplitter{work: make([]chan span, n-1)}
		for i := range splitter.work {
			ch := make(chan span)
			splitter.work[i] = ch
			go func() {
				for s := range ch {
					s.job.Run(s.r0, s.r1)
					splitter.wg.Done()
				}
			}()
		}
	})
	if splitter == nil {
		return nil
	}
	return splitter
}

// Do is safe for one caller at a time per job; concurrent callers (several
// generations in one process) serialize on the workers.
func (p *rowSplitter) Do(rows int, job *core.MatVecJob) {
	n := len(p.work) + 1
	chunk := (rows + n - 1) / n
	p.wg.Add(n - 1)
	for i, ch := range p.work {
		r0 := min((i+1)*chunk, rows)
		ch <- span{job, r0, min(r0+chunk, rows)}
	}
	job.Run(0, min(chunk, rows))
	p.wg.Wait()
}
