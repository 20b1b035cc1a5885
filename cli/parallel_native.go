//go:build !wasm

package cli

import (
	"runtime"
	"sync"

	"mote/core"
)

// rowJob is a matrix product that runs any range of its output rows: the
// decoder's core.MatVecJob and the encoder's core.BertJob.
type rowJob interface{ Run(r0, r1 int) }

// rowSplitter runs a job's rows on all cores: the caller takes the first
// share, persistent workers the others. Handing work over a channel
// allocates nothing, so decoding stays allocation-free.
type rowSplitter[J rowJob] struct {
	work []chan span[J]
	wg   sync.WaitGroup
}

type span[J rowJob] struct {
	job    J
	r0, r1 int
}

// newRowSplitter starts one worker per core beyond the first; nil on one core.
func newRowSplitter[J rowJob]() *rowSplitter[J] {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return nil
	}
	p := &rowSplitter[J]{work: make([]chan span[J], n-1)}
	for i := range p.work {
		ch := make(chan span[J])
		p.work[i] = ch
		go func() {
			for s := range ch {
				s.job.Run(s.r0, s.r1)
				p.wg.Done()
			}
		}()
	}
	return p
}

// Do is safe for one caller at a time per job; concurrent callers (several
// generations in one process) serialize on the workers.
func (p *rowSplitter[J]) Do(rows int, job J) {
	n := len(p.work) + 1
	chunk := (rows + n - 1) / n
	p.wg.Add(n - 1)
	for i, ch := range p.work {
		r0 := min((i+1)*chunk, rows)
		ch <- span[J]{job, r0, min(r0+chunk, rows)}
	}
	job.Run(0, min(chunk, rows))
	p.wg.Wait()
}

// The process's splitters, one for the decoder's products and one for the
// encoder's, started on first use.
var (
	decoderSplitter = sync.OnceValue(newRowSplitter[*core.MatVecJob])
	encoderSplitter = sync.OnceValue(newRowSplitter[*core.BertJob])
)

// newParallel returns the decoder's splitter, or nil on one core.
func newParallel() core.Parallel {
	if p := decoderSplitter(); p != nil {
		return p
	}
	return nil
}

// newBertParallel returns the encoder's splitter, or nil on one core.
func newBertParallel() core.BertParallel {
	if p := encoderSplitter(); p != nil {
		return p
	}
	return nil
}
