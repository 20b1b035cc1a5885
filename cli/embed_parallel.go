//go:build !wasm

package cli

import (
	"runtime"
	"sync"

	"mote/core"
)

// bertSplitter runs an encoder's matrix products on all cores, as
// rowSplitter does the decoder's: the caller takes the first share of the
// rows, persistent workers the others.
type bertSplitter struct {
	work []chan bertSpan
	wg   sync.WaitGroup
}

type bertSpan struct {
	job    *core.BertJob
	r0, r1 int
}

var (
	bertSplitterOnce sync.Once
	bertSplit        *bertSplitter
)

// newBertParallel returns the process's encoder splitter, or nil on one core.
func newBertParallel() core.BertParallel {
	bertSplitterOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		if n < 2 {
			return
		}
		bertSplit = &bertSplitter{work: make([]chan bertSpan, n-1)}
		for i := range bertSplit.work {
			ch := make(chan bertSpan)
			bertSplit.work[i] = ch
			go func() {
				for s := range ch {
					s.job.Run(s.r0, s.r1)
					bertSplit.wg.Done()
				}
			}()
		}
	})
	if bertSplit == nil {
		return nil
	}
	return bertSplit
}

// Do is safe for one caller at a time per job.
func (p *bertSplitter) Do(rows int, job *core.BertJob) {
	n := len(p.work) + 1
	chunk := (rows + n - 1) / n
	p.wg.Add(n - 1)
	for i, ch := range p.work {
		r0 := min((i+1)*chunk, rows)
		ch <- bertSpan{job, r0, min(r0+chunk, rows)}
	}
	job.Run(0, min(chunk, rows))
	p.wg.Wait()
}
