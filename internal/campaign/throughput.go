package campaign

import (
	"runtime"

	"github.com/attnvet/attnvet/internal/targets"
)

// maxExtraWorkers bounds the goroutines defaultWorkers adds for exec
// targets' requests in flight.
const maxExtraWorkers = 256

// defaultWorkers is the number of campaign goroutines when Options.Workers
// is 0: one per core (GOMAXPROCS) for attnvet's own work (generating the
// inputs, the reference, the judgement), plus one for each request the
// exec targets can hold in flight (Procs × max_inflight). A goroutine
// waiting for a worker's reply uses no CPU; with only GOMAXPROCS of them,
// a worker process sat idle whenever every goroutine was computing, so a
// second worker process (--procs 2) added nothing (docs/worker.md,
// "Throughput").
func defaultWorkers(ts []targets.Target) int {
	n := runtime.GOMAXPROCS(0)
	extra := 0
	for _, t := range ts {
		if c, ok := t.Kernel.(interface{ Capacity() int }); ok && t.Kind == targets.Exec {
			extra += c.Capacity()
		}
	}
	return n + min(extra, maxExtraWorkers)
}
