package worker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
)

// A pipe is one worker process with several requests in flight (protocol
// 2, max_inflight > 1): requests are written in order, replies read in
// the same order by one reader goroutine. The case timeout runs for the
// oldest pending request from when it was sent or the previous reply
// arrived, whichever is later. When the process fails, the oldest pending
// request gets the failure; the others were not its cause and are sent
// again (Stats.Resent).
type pipe struct {
	w   *Worker
	wmu sync.Mutex // serializes starts and writes, so the order written is the order pending
	mu  sync.Mutex
	p   *proc // nil: start one on the next request
	// pending are the requests written and not answered, oldest first.
	pending    []*call
	load       int   // requests assigned to this pipe (under Worker.pmu)
	maxPending int64 // the most requests in flight at once (tests)
}

type call struct {
	payload  []byte
	limit    int64
	limitMsg string
	res      chan callResult // buffered: one result
}

type callResult struct {
	reply   []byte
	kind    string
	outside bool
	err     error
	stderr  string
	resend  bool  // an earlier request's failure ended the process: send it again
	p       *proc // the process that answered (reply)
}

// submit writes c to the pipe's process (starting one if needed); its
// result comes on c.res. Its error means no process could be started.
func (pp *pipe) submit(c *call) error {
	pp.wmu.Lock()
	defer pp.wmu.Unlock()
	for {
		pp.mu.Lock()
		p := pp.p
		pp.mu.Unlock()
		for p == nil {
			np, err := pp.w.restart()
			if err != nil {
				pp.w.logf("worker: %v", err)
				if pp.w.isBroken() {
					return err
				}
				continue
			}
			pp.attach(np)
			p = np
		}
		pp.mu.Lock()
		if pp.p != p { // it failed meanwhile
			pp.mu.Unlock()
			continue
		}
		pp.pending = append(pp.pending, c)
		if n := int64(len(pp.pending)); n > pp.maxPending {
			pp.maxPending = n
		}
		if len(pp.pending) == 1 {
			p.stdout.SetReadDeadline(time.Now().Add(pp.w.opt.CaseTimeout))
		}
		pp.mu.Unlock()
		// A failed write means the process is dying: its reader settles
		// the requests, once it has read the replies already written (the
		// one being answered is at fault, not the oldest unread).
		_ = WriteFrame(p.stdin, c.payload)
		return nil
	}
}

// attach makes p the pipe's process and starts its reader.
func (pp *pipe) attach(p *proc) {
	pp.mu.Lock()
	pp.p = p
	pp.mu.Unlock()
	var leaderGone atomic.Bool
	go func() {
		<-p.done
		// A process it started may hold stdout open: do not wait for the
		// case timeout (a reply already in the pipe still gets 500 ms).
		leaderGone.Store(true)
		p.stdout.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}()
	go pp.read(p, &leaderGone)
}

// read delivers p's replies to the pending requests in order until p fails.
func (pp *pipe) read(p *proc, leaderGone *atomic.Bool) {
	for {
		var hdr [8]byte
		_, err := io.ReadFull(p.stdout, hdr[:])
		if err == nil {
			pp.mu.Lock()
			if pp.p != p { // p was failed meanwhile: its requests are settled
				pp.mu.Unlock()
				return
			}
			var head *call
			if len(pp.pending) > 0 {
				head = pp.pending[0]
			}
			pp.mu.Unlock()
			n := binary.LittleEndian.Uint64(hdr[:])
			switch {
			case head == nil:
				pp.fail(p, Malformed, fmt.Errorf("a frame (length prefix %d) with no request pending (prefix bytes %q: the worker must write only frames to stdout; logs go to stderr)", n, hdr[:]))
				return
			case n > uint64(head.limit):
				pp.fail(p, Malformed, fmt.Errorf("%w: length prefix %d exceeds %s (rejected unread; prefix bytes %q: the worker must write only frames to stdout; logs go to stderr)",
					errFrameTooLarge, n, head.limitMsg, hdr[:]))
				return
			}
			b := make([]byte, n)
			if _, err = io.ReadFull(p.stdout, b); err == nil {
				pp.mu.Lock()
				if pp.p != p || len(pp.pending) == 0 || pp.pending[0] != head {
					pp.mu.Unlock()
					return // p was failed meanwhile (its requests settled; a newer process's are not ours)
				}
				pp.pending = pp.pending[1:]
				if len(pp.pending) > 0 {
					p.stdout.SetReadDeadline(time.Now().Add(pp.w.opt.CaseTimeout))
				} else if !leaderGone.Load() {
					p.stdout.SetReadDeadline(time.Time{})
				}
				pp.mu.Unlock()
				head.res <- callResult{reply: b, p: p}
				continue
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && leaderGone.Load():
			what, _ := p.exitStatus()
			pp.fail(p, Crash, fmt.Errorf("the worker exited before replying (%s) while a process it started keeps its stdout open", what))
		case errors.Is(err, os.ErrDeadlineExceeded):
			pp.fail(p, Timeout, fmt.Errorf("no reply within %v; killed", pp.w.opt.CaseTimeout))
		default:
			pp.fail(p, Crash, err)
		}
		return
	}
}

// fail ends p (once): the oldest pending request gets the failure, the
// others are sent again.
func (pp *pipe) fail(p *proc, kind string, err error) {
	pp.mu.Lock()
	if pp.p != p {
		pp.mu.Unlock()
		return
	}
	calls := pp.pending
	pp.p, pp.pending = nil, nil
	pp.mu.Unlock()
	outside := false
	if kind == Crash {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err, outside = p.deathMessage(err)
		} else if p.exited() {
			_, outside = p.exitStatus()
		}
	}
	p.kill()
	p.stop()
	stderr := p.stderr.String()
	for i, c := range calls {
		if i == 0 {
			c.res <- callResult{kind: kind, outside: outside, err: err, stderr: stderr}
		} else {
			c.res <- callResult{resend: true}
		}
	}
}

// stop ends the pipe's process (Close).
func (pp *pipe) stop() {
	pp.wmu.Lock()
	defer pp.wmu.Unlock()
	pp.mu.Lock()
	p := pp.p
	pp.p = nil
	pp.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// runPipelined is Run for a worker with several requests in flight per
// process.
func (w *Worker) runPipelined(in *problem.Inputs, seq int64, payload []byte, limit int64, limitMsg string) (*impl.Output, error) {
	closed := &Error{Kind: Crash, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: "the worker was closed"}
	select {
	case w.sem <- struct{}{}:
	case <-w.closing:
		return nil, closed
	}
	defer func() { <-w.sem }()
	select {
	case <-w.closing:
		return nil, closed
	default:
	}
	var own *Error
	for attempt := 0; ; {
		w.pmu.Lock()
		pp := w.pipes[0]
		for _, q := range w.pipes[1:] {
			if q.load < pp.load {
				pp = q
			}
		}
		pp.load++
		w.pmu.Unlock()
		c := &call{payload: payload, limit: limit, limitMsg: limitMsg, res: make(chan callResult, 1)}
		err := pp.submit(c)
		var r callResult
		if err == nil {
			r = <-c.res
		}
		w.pmu.Lock()
		pp.load--
		w.pmu.Unlock()
		if err != nil { // no process could be started
			return nil, &Error{Kind: Crash, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: err.Error()}
		}
		if r.resend {
			w.count(func(s *Stats) { s.Resent++ })
			continue // not this request's doing: not an attempt
		}
		err = r.err
		kind := r.kind
		if err == nil {
			var out *impl.Output
			out, kind, err = w.decode(r.reply, in, seq)
			if err == nil {
				return out, w.answered(seq, attempt, own)
			}
			if kind != Reported { // a bad reply: this process is done
				r.stderr = pp.failMalformed(r.p)
			}
		}
		e := &Error{Kind: kind, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: err.Error(), Stderr: r.stderr}
		if kind == Reported {
			w.count(func(s *Stats) { s.Reported++ })
			return nil, e
		}
		if w.failedAttempt(e, r.outside, attempt, &own) {
			attempt++
			continue
		}
		return nil, e
	}
}

// failMalformed ends the pipe's process after a reply that was read
// whole but is not a valid one; the requests behind it are sent again.
// It returns the process's stderr.
func (pp *pipe) failMalformed(p *proc) string {
	pp.mu.Lock()
	if pp.p != p { // already failed: its stderr is what it was
		pp.mu.Unlock()
		return p.stderr.String()
	}
	calls := pp.pending
	pp.p, pp.pending = nil, nil
	pp.mu.Unlock()
	p.kill()
	p.stop()
	for _, c := range calls {
		c.res <- callResult{resend: true}
	}
	return p.stderr.String()
}
