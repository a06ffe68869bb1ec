package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// countProgress shows how many of a run's cases are done, like fuzz does:
// one line redrawn every 250 ms on a terminal, a plain line every
// interval otherwise, from a ticker (a slow case does not hold the
// display). mutants, validate and report use it.
type countProgress struct {
	w           io.Writer
	name        string // the command, prefixed to plain lines
	unit        string // what is counted, e.g. "cases"
	tty         bool
	start       time.Time
	done, total atomic.Int64
	stop        chan struct{}
	wg          sync.WaitGroup
	on          bool // progress enabled
}

func newCountProgress(w io.Writer, every time.Duration, name, unit string, total int) *countProgress {
	p := &countProgress{w: w, name: name, unit: unit, tty: isTerminal(w), start: time.Now(), stop: make(chan struct{})}
	p.total.Store(int64(total))
	if every <= 0 {
		return p
	}
	p.on = true
	if p.tty {
		every = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

// update is the Progress callback of mutscore and validate.
func (p *countProgress) update(done, total int) {
	p.done.Store(int64(done))
	p.total.Store(int64(total))
}

func (p *countProgress) print() {
	done, total := p.done.Load(), p.total.Load()
	el := time.Since(p.start)
	line := fmt.Sprintf("%5.0fs  %d/%d %s  %.1f/s", el.Seconds(), done, total, p.unit, float64(done)/el.Seconds())
	if done > 0 && done < total {
		eta := time.Duration(float64(el) * float64(total-done) / float64(done))
		line += fmt.Sprintf("  ETA %s", eta.Round(time.Second))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintf(p.w, "attnvet %s: %s\n", p.name, line)
}

// finish stops the display with a last line (redrawn on a terminal), so
// even a run shorter than the interval says it ended.
func (p *countProgress) finish() {
	close(p.stop)
	p.wg.Wait()
	if !p.on {
		return
	}
	p.print()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
