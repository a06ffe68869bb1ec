// Package worker runs an external attention kernel as a process that
// speaks the exec protocol (docs/worker.md), so campaigns can verify any
// kernel a team can call from a program: `--target exec:'CMD'`.
//
// The protocol: attnvet starts CMD once (through /bin/sh -c) and exchanges
// frames over the worker's stdin and stdout. A frame is the payload's
// length as 8 bytes little endian, then the payload: a safetensors file.
//
//	attnvet → worker  hello:   no tensors; metadata request=hello, protocol=1
//	worker → attnvet  hello:   metadata declaring the worker's precision
//	                           profile (profile and/or in_dtype, score_dtype,
//	                           p_dtype, acc_dtype, out_dtype, out_rounding;
//	                           none at all means the built-in bf16) and
//	                           optionally name, or error=MESSAGE
//	attnvet → worker  request: the case's input tensors and metadata under
//	                           the bundle contract (internal/interop), plus
//	                           request=run and seq=N
//	worker → attnvet  reply:   tensor o [T, H, Dv] in any float dtype whose
//	                           values the declared out_dtype represents, or
//	                           metadata error=MESSAGE
//
// The worker exits when its stdin closes. It writes nothing but frames to
// stdout (logs go to stderr; attnvet keeps the last few KiB for its error
// messages).
//
// Failures are *Error values of four kinds: the worker died (crash), did
// not answer within the case timeout (timeout), answered something that is
// not a valid reply (malformed), or answered error=… (reported). After a
// crash, a timeout or a malformed reply the process is killed (with its
// process group) and a fresh one is started for the next request. A
// request the worker died on is retried once on a fresh process: if the
// retry succeeds the death was not the case's doing (someone killed the
// worker, say) and the result stands; if it dies again the case is
// reported as the cause.
package worker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Protocol is the protocol version sent in the hello frame.
const Protocol = "1"

// Metadata keys of the protocol (besides the bundle contract's).
const (
	KeyRequest  = "request"  // hello | run
	KeyProtocol = "protocol" // hello: the protocol version
	KeySeq      = "seq"      // run: the request number, from 1
)

// Kinds of worker failure.
const (
	Crash     = "crash"     // the worker exited or closed its stdout
	Timeout   = "timeout"   // no reply within the case timeout
	Malformed = "malformed" // a reply that is not a valid frame, safetensors or o
	Reported  = "reported"  // the worker replied error=MESSAGE
	// CrashRetried: the worker died on the request (not by a signal from
	// outside) and a fresh process answered it. A defect all the same: a
	// kernel that crashes one time in three has a race, a leak or state
	// carried between requests.
	CrashRetried = "crash_retried"
)

// Error is a worker failure on one request. The campaign records it as a
// worker failure of the case it ran, not as a numerical mismatch.
type Error struct {
	Kind    string // Crash, CrashRetried, Timeout, Malformed or Reported
	Worker  string // the command
	Request int64  // request number within this Worker, from 1 (0: the hello)
	Case    string // the inputs' shape (interop.Describe)
	Msg     string
	Stderr  string // the last lines the worker wrote to stderr
}

func (e *Error) Error() string {
	s := fmt.Sprintf("worker %s on request %d (%s): %s", e.Kind, e.Request, e.Case, e.Msg)
	if e.Stderr != "" {
		s += "; worker stderr: " + lastLines(e.Stderr, 3, 400)
	}
	return s
}

// Defaults.
const (
	DefaultCaseTimeout  = 30 * time.Second
	DefaultStartTimeout = 2 * time.Minute
	maxStartFailures    = 3
	stderrTail          = 8 << 10
)

// Options configure a Worker. Start from DefaultOptions.
type Options struct {
	// CaseTimeout bounds one request (sending the inputs and reading the
	// reply); a worker past it is killed and restarted.
	CaseTimeout time.Duration
	// StartTimeout bounds starting the process and its hello reply.
	StartTimeout time.Duration
	// Deadline, if set, also bounds the first start and hello (New): a
	// campaign with --time 10s does not wait 2 minutes for a silent worker.
	Deadline time.Time
	// Profile, if set, overrides the profile the worker declares.
	Profile *profile.Profile
	// Name is the kernel's name; "" means "exec:" + the command.
	Name string
	// Procs is how many worker processes serve requests in parallel
	// (default 1: the worker may use every core itself).
	Procs int
	// MaxFrame is the largest reply accepted (default 1 GiB).
	MaxFrame int64
	// Retries is how often a request the worker died on is retried on a
	// fresh process (default 1; negative: never).
	Retries int
	// Dir is the worker's working directory ("" = ours).
	Dir string
	// Stderr, if set, receives the worker's stderr as it is written.
	Stderr io.Writer
	// Logf, if set, is told about restarts and retries.
	Logf func(format string, args ...any)
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{CaseTimeout: DefaultCaseTimeout, StartTimeout: DefaultStartTimeout, Procs: 1, MaxFrame: DefaultMaxFrame, Retries: 1}
}

// Stats count what happened over a Worker's life.
type Stats struct {
	// Procs is how many processes the worker runs at once (Options.Procs;
	// summed by Add): Starts − Procs are restarts.
	Procs     int64 `json:"procs,omitempty"`
	Requests  int64 `json:"requests"`
	Starts    int64 `json:"starts"`
	Crashes   int64 `json:"crashes"`
	Timeouts  int64 `json:"timeouts"`
	Malformed int64 `json:"malformed"`
	Reported  int64 `json:"reported"`
	Retried   int64 `json:"retried"` // requests that succeeded on a retry after a crash
	// CrashRetried counts the retried requests reported as crash_retried
	// failures (the worker died on them by itself); the rest of Retried
	// died of a signal from outside (Killed).
	CrashRetried int64 `json:"crash_retried"`
	// Resent counts requests sent again because the process failed on an
	// earlier request in flight with them (max_inflight > 1).
	Resent int64 `json:"resent,omitempty"`
	// Killed counts crashes by a signal from outside (SIGKILL, SIGTERM,
	// SIGINT, SIGHUP, SIGQUIT): not the worker's doing when a retry succeeds.
	Killed int64 `json:"killed"`
	// Skipped counts cases the hello's declarations exclude (protocol 2),
	// not sent; SkipReasons counts them by reason.
	Skipped     int64            `json:"skipped"`
	SkipReasons map[string]int64 `json:"skip_reasons,omitempty"`
}

// Add adds the counts of b to s (merging shards' results).
func (s *Stats) Add(b Stats) {
	s.Procs += b.Procs
	s.Requests += b.Requests
	s.Starts += b.Starts
	s.Crashes += b.Crashes
	s.Timeouts += b.Timeouts
	s.Malformed += b.Malformed
	s.Reported += b.Reported
	s.Retried += b.Retried
	s.CrashRetried += b.CrashRetried
	s.Resent += b.Resent
	s.Killed += b.Killed
	s.Skipped += b.Skipped
	for k, v := range b.SkipReasons {
		if s.SkipReasons == nil {
			s.SkipReasons = map[string]int64{}
		}
		s.SkipReasons[k] += v
	}
}

// Clone returns a copy of s that shares nothing with it.
func (s Stats) Clone() Stats {
	c := s
	c.SkipReasons = nil
	c.Add(Stats{SkipReasons: s.SkipReasons})
	return c
}

// Worker is an external kernel process (or a pool of them) behind
// impl.Kernel. It is safe for concurrent use; requests are spread over
// Options.Procs processes.
type Worker struct {
	cmd     string
	opt     Options
	name    string
	prof    profile.Profile
	declare map[string]string // the profile metadata of the first hello
	decl    decl              // its v2 declarations
	slots   chan *proc        // idle processes; nil = not running
	// With max_inflight > 1 (protocol 2): pipes instead of slots, and sem
	// bounding the requests in flight to Procs × max_inflight.
	pipes   []*pipe
	sem     chan struct{}
	pmu     sync.Mutex
	closing chan struct{} // closed by Close
	seq     atomic.Int64

	mu        sync.Mutex
	stats     Stats
	failures  int   // consecutive failed starts
	broken    error // set after maxStartFailures
	closed    bool
	closeOnce sync.Once
}

// New starts cmd (with /bin/sh -c), exchanges the hello frames and returns
// the worker. Its error means the worker could not be started or did not
// answer the hello properly.
func New(cmd string, opt Options) (*Worker, error) {
	if strings.TrimSpace(cmd) == "" {
		return nil, errors.New("worker: empty command")
	}
	def := DefaultOptions()
	if opt.CaseTimeout <= 0 {
		opt.CaseTimeout = def.CaseTimeout
	}
	if opt.StartTimeout <= 0 {
		opt.StartTimeout = def.StartTimeout
	}
	if opt.Procs <= 0 {
		opt.Procs = def.Procs
	}
	if opt.MaxFrame <= 0 {
		opt.MaxFrame = def.MaxFrame
	}
	w := &Worker{cmd: cmd, opt: opt, name: opt.Name, slots: make(chan *proc, opt.Procs), closing: make(chan struct{})}
	if w.name == "" {
		w.name = "exec:" + cmd
	}
	p, meta, err := w.start(opt.Deadline)
	if err != nil {
		return nil, err
	}
	if err := w.adopt(meta); err != nil {
		p.stop()
		return nil, err
	}
	w.count(func(s *Stats) { s.Procs = int64(opt.Procs) })
	// The other processes start now, in parallel, so that a worker that
	// cannot run twice fails here and Starts − Procs counts restarts.
	others := make([]*proc, opt.Procs-1)
	errs := make([]error, opt.Procs-1)
	var wg sync.WaitGroup
	for i := range others {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q, meta, err := w.start(opt.Deadline)
			if err == nil {
				if err = w.sameDeclaration(meta); err != nil {
					q.stop()
				}
			}
			others[i], errs[i] = q, err
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.stop()
		for _, q := range others {
			if q != nil {
				q.stop()
			}
		}
		return nil, err
	}
	if k := w.decl.inflight; k > 1 {
		w.sem = make(chan struct{}, opt.Procs*k)
		for _, q := range append([]*proc{p}, others...) {
			pp := &pipe{w: w}
			pp.attach(q)
			w.pipes = append(w.pipes, pp)
		}
		return w, nil
	}
	w.slots <- p
	for _, q := range others {
		w.slots <- q
	}
	return w, nil
}

// sameDeclaration checks that a further process's hello declares what
// the first one did.
func (w *Worker) sameDeclaration(meta map[string]string) error {
	if d := profileMeta(meta); !sameMeta(d, w.declare) {
		return fmt.Errorf("worker %s: a further process declares profile %v, the first one declared %v", w.cmd, d, w.declare)
	}
	if d, err := parseDecl(meta); err != nil || d.v2 != w.decl.v2 || !sameMeta(d.raw, w.decl.raw) {
		return fmt.Errorf("worker %s: a further process declares protocol %q and %v, the first one declared protocol %d and %v", w.cmd, meta[KeyProtocol], d.raw, w.ProtocolVersion(), w.decl.raw)
	}
	return nil
}

// adopt takes the profile the first hello declared (or Options.Profile).
func (w *Worker) adopt(meta map[string]string) error {
	w.declare = profileMeta(meta)
	d, err := parseDecl(meta)
	if err != nil {
		return fmt.Errorf("worker %s: %v", w.cmd, err)
	}
	w.decl = d
	if w.opt.Profile != nil {
		w.prof = *w.opt.Profile
		return nil
	}
	if len(w.declare) == 0 {
		w.prof = profile.MustLookup("bf16")
		return nil
	}
	in := num.BF16
	if s, ok := w.declare[interop.KeyInDType]; ok {
		if f, err := interop.ParseFormat(s); err == nil {
			in = f
		}
	}
	p, err := interop.ResolveProfile(w.declare, in, in)
	if err != nil {
		return fmt.Errorf("worker %s: its hello declares a bad profile: %v", w.cmd, err)
	}
	w.prof = p
	return nil
}

func profileMeta(meta map[string]string) map[string]string {
	m := map[string]string{}
	for _, k := range interop.ProfileKeys {
		if v, ok := meta[k]; ok {
			m[k] = v
		}
	}
	return m
}

// Name is the kernel's name.
func (w *Worker) Name() string { return w.name }

// Profile is the precision profile the worker declared (or was given).
func (w *Worker) Profile() profile.Profile { return w.prof }

// Command is the command line the worker runs.
func (w *Worker) Command() string { return w.cmd }

// Stats returns the counts so far.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats.Clone()
}

// ProtocolVersion is the protocol the worker's hello chose: 1 or 2.
func (w *Worker) ProtocolVersion() int {
	if w.decl.v2 {
		return 2
	}
	return 1
}

func (w *Worker) count(f func(*Stats)) {
	w.mu.Lock()
	f(&w.stats)
	w.mu.Unlock()
}

func (w *Worker) logf(format string, a ...any) {
	if w.opt.Logf != nil {
		w.opt.Logf(format, a...)
	}
}

// Run sends in to the worker and returns its output. Worker failures are
// *Error values; a case the worker's hello excludes is a *SkipError (not
// sent); other errors mean the inputs cannot be sent.
func (w *Worker) Run(in *problem.Inputs) (*impl.Output, error) { return w.run(in, nil) }

// Families are the families the hello declared (protocol 2,
// families=…), in problem.Families order; nil when it declared none (it
// takes every family).
func (w *Worker) Families() []problem.Family {
	if w.decl.families == nil {
		return nil
	}
	var fs []problem.Family
	for _, f := range problem.Families() {
		if w.decl.families[f] {
			fs = append(fs, f)
		}
	}
	return fs
}

// Splits are the split counts the hello declared (protocol 2, splits=…);
// nil when it declared none.
func (w *Worker) Splits() []int { return append([]int(nil), w.decl.splits...) }

// RunSplit is Run asking the worker to compute with split count n (one of
// Splits): the request carries split=N.
func (w *Worker) RunSplit(in *problem.Inputs, n int) (*impl.Output, error) {
	if !containsInt(w.decl.splits, n) {
		return nil, fmt.Errorf("%s: split %d not declared (splits %v)", w.name, n, w.decl.splits)
	}
	return w.run(in, map[string]string{KeySplit: strconv.Itoa(n)})
}

func containsInt(l []int, n int) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

// run is Run with extra request metadata.
func (w *Worker) run(in *problem.Inputs, extra map[string]string) (*impl.Output, error) {
	if !impl.Compatible(in.Format, w.prof) {
		return nil, fmt.Errorf("%s: inputs are %s, the worker takes %s", w.name, in.Format, w.prof.In)
	}
	if r := w.decl.skipReason(in); r != "" {
		return nil, w.skip(in, r)
	}
	f, err := interop.Encode(in, w.prof, nil)
	if err != nil {
		return nil, err
	}
	declareOutputs(f, in)
	if r, err := w.decl.store(f); err != nil {
		return nil, err
	} else if r != "" {
		return nil, w.skip(in, r)
	}
	seq := w.seq.Add(1)
	f.Metadata[KeyRequest] = "run"
	f.Metadata[KeySeq] = strconv.FormatInt(seq, 10)
	if w.decl.v2 {
		f.Metadata[KeyProtocol] = "2"
	}
	for k, v := range extra {
		f.Metadata[k] = v
	}
	var buf bytes.Buffer
	if err := f.WriteSafetensors(&buf); err != nil {
		return nil, err
	}
	payload := buf.Bytes()
	limit := replyLimit(in, w.opt.MaxFrame)
	limitMsg := fmt.Sprintf("the %d-byte frame limit", limit)
	if limit < w.opt.MaxFrame {
		limitMsg = fmt.Sprintf("the largest valid reply to this case, %d bytes (o [%d, %d, %d] in F64 plus %d bytes of header)", limit, in.T, in.H, in.Dv, replyHeader)
	}
	w.count(func(s *Stats) { s.Requests++ })
	if w.pipes != nil {
		return w.runPipelined(in, seq, payload, limit, limitMsg)
	}

	p, ok := <-w.slots
	if !ok {
		return nil, &Error{Kind: Crash, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: "the worker was closed"}
	}
	defer func() { w.slots <- p }()
	var own *Error // the first crash on this request that was the worker's own doing
	for attempt := 0; ; attempt++ {
		for p == nil {
			var serr error
			if p, serr = w.restart(); serr != nil {
				w.logf("worker: %v", serr)
				if w.isBroken() {
					return nil, &Error{Kind: Crash, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: serr.Error()}
				}
				// A start that failed (killed during its hello, say) is tried
				// again: the request did not cause it; three failed starts
				// in a row break the worker.
			}
		}
		reply, kind, outside, err := p.exchange(payload, w.opt.CaseTimeout, limit, limitMsg)
		if err == nil {
			var out *impl.Output
			out, kind, err = w.decode(reply, in, seq)
			if err == nil {
				return out, w.answered(seq, attempt, own)
			}
		}
		e := &Error{Kind: kind, Worker: w.cmd, Request: seq, Case: interop.Describe(in), Msg: err.Error()}
		if kind == Reported {
			w.count(func(s *Stats) { s.Reported++ })
			return nil, e // the process is fine
		}
		p.kill()
		p.stop()
		e.Stderr = p.stderr.String() // complete: stop waited for the process
		p = nil
		if w.failedAttempt(e, outside, attempt, &own) {
			continue
		}
		return nil, e
	}
}

// answered is the error of a request answered on attempt (nil, unless
// the worker died on an earlier attempt by itself: crash_retried).
func (w *Worker) answered(seq int64, attempt int, own *Error) error {
	if attempt == 0 {
		return nil
	}
	w.count(func(s *Stats) { s.Retried++ })
	if own != nil {
		w.count(func(s *Stats) { s.CrashRetried++ })
		own.Kind = CrashRetried
		own.Msg += fmt.Sprintf("; a fresh process answered it on retry %d, but a crash that a retry survives is still a defect of the kernel or its harness (a race, a leak, state carried between requests)", attempt)
		w.logf("worker: %v", own)
		return own
	}
	w.logf("worker: request %d succeeded on a fresh process after the worker was killed by a signal from outside; the case did not cause the death", seq)
	return nil
}

// failedAttempt counts a crash, timeout or malformed reply on attempt
// (its process is gone) and says whether to retry the request; own keeps
// the first crash that was the worker's own doing.
func (w *Worker) failedAttempt(e *Error, outside bool, attempt int, own **Error) (retry bool) {
	kind := e.Kind
	w.count(func(s *Stats) {
		switch kind {
		case Crash:
			s.Crashes++
			if outside {
				s.Killed++
			}
		case Timeout:
			s.Timeouts++
		default:
			s.Malformed++
		}
	})
	if kind == Crash && !outside && *own == nil {
		c := *e
		*own = &c
	}
	if kind == Crash && attempt < w.opt.Retries {
		w.logf("worker: %v; restarting it and retrying the request", e)
		return true
	}
	if kind == Crash && attempt > 0 {
		e.Msg += fmt.Sprintf(" (it died on this request %d times)", attempt+1)
	}
	w.logf("worker: %v; it will be restarted for the next request", e)
	return false
}

// skip counts a case the declarations exclude.
func (w *Worker) skip(in *problem.Inputs, reason string) error {
	w.count(func(s *Stats) {
		s.Skipped++
		if s.SkipReasons == nil {
			s.SkipReasons = map[string]int64{}
		}
		s.SkipReasons[reason]++
	})
	return &SkipError{Worker: w.cmd, Reason: reason, Case: interop.Describe(in)}
}

// replyHeader is the room a reply may take besides o's data: the
// safetensors header (tensor entries, metadata, an error message).
const replyHeader = 1 << 20

// replyLimit is the largest valid reply to in: o [T, H, Dv] in F64 (the
// widest float dtype) plus replyHeader, at most max. A longer length
// prefix is rejected before anything is read, so a worker cannot make
// attnvet allocate more than a reply can need.
func replyLimit(in *problem.Inputs, max int64) int64 {
	n := int64(in.T) * int64(in.H) * int64(in.Dv)
	if n < 0 || n > (max-replyHeader)/8 || lseBytes(in) > max-replyHeader-8*n {
		return max
	}
	return min(max, 8*n+lseBytes(in)+replyHeader)
}

// decode reads a reply: o, or error metadata.
func (w *Worker) decode(reply []byte, in *problem.Inputs, seq int64) (*impl.Output, string, error) {
	f, err := bundle.Parse(reply)
	if err != nil {
		return nil, Malformed, fmt.Errorf("reply is not a safetensors payload: %v", err)
	}
	if s, ok := f.Metadata[KeySeq]; ok && w.decl.v2 && s != strconv.FormatInt(seq, 10) {
		return nil, Malformed, fmt.Errorf("the reply carries seq=%q, the request was seq=%d (replies must come in request order)", s, seq)
	}
	if msg, ok := f.Metadata[interop.KeyError]; ok {
		return nil, Reported, fmt.Errorf("the worker reported: %s", msg)
	}
	o, err := interop.Output(f, in, w.prof.Out)
	if err != nil {
		return nil, Malformed, err
	}
	lse, err := replyLSE(f, in)
	if err != nil {
		return nil, Malformed, err
	}
	ml, err := replyMaxLogit(f, in)
	if err != nil {
		return nil, Malformed, err
	}
	return &impl.Output{O: o, LSE: lse, MaxLogit: ml}, "", nil
}

func (w *Worker) isBroken() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.broken != nil || w.closed
}

// restart starts a fresh process for a slot, unless starting has failed
// too often in a row.
func (w *Worker) restart() (*proc, error) {
	w.mu.Lock()
	if w.broken != nil {
		w.mu.Unlock()
		return nil, w.broken
	}
	if w.closed {
		w.mu.Unlock()
		return nil, errors.New("the worker was closed")
	}
	w.mu.Unlock()
	p, meta, err := w.start(time.Time{})
	if err == nil {
		if err = w.sameDeclaration(meta); err != nil {
			p.stop()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failures++
		if w.failures >= maxStartFailures {
			w.broken = fmt.Errorf("the worker failed to start %d times in a row; giving up: %v", w.failures, err)
			return nil, w.broken
		}
		return nil, fmt.Errorf("could not restart the worker: %v", err)
	}
	w.failures = 0
	return p, nil
}

func sameMeta(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// start launches a process and exchanges the hello frames, within the
// start timeout and before deadline (if set).
func (w *Worker) start(deadline time.Time) (*proc, map[string]string, error) {
	timeout, why := w.opt.StartTimeout, ""
	if !deadline.IsZero() {
		if d := time.Until(deadline); d < timeout {
			timeout, why = max(d, time.Millisecond), " (the run's time budget, --time, ended first: a worker that starts slowly needs a longer --time)"
		}
	}
	w.count(func(s *Stats) { s.Starts++ })
	p, err := launch(w.cmd, w.opt)
	if err != nil {
		return nil, nil, fmt.Errorf("worker %s: %v", w.cmd, err)
	}
	hello := bundle.NewFile()
	hello.Metadata[KeyRequest] = "hello"
	hello.Metadata[KeyProtocol] = Protocol
	hello.Metadata[KeyProtocolMax] = ProtocolMax
	hello.Metadata[interop.KeyVersion] = interop.Version
	var buf bytes.Buffer
	if err := hello.WriteSafetensors(&buf); err != nil {
		p.stop()
		return nil, nil, err
	}
	hmax := min(w.opt.MaxFrame, replyHeader)
	reply, kind, _, err := p.exchange(buf.Bytes(), timeout, hmax, fmt.Sprintf("the largest valid hello reply (%d bytes)", hmax))
	if err != nil {
		tail := p.stderr.String()
		p.stop()
		msg := fmt.Sprintf("worker %s: no hello reply (%s): %v%s", w.cmd, kind, err, why)
		if tail != "" {
			msg += "; worker stderr: " + lastLines(tail, 3, 400)
		}
		return nil, nil, errors.New(msg)
	}
	f, err := bundle.Parse(reply)
	if err != nil {
		p.stop()
		return nil, nil, fmt.Errorf("worker %s: its hello reply is not a safetensors payload: %v", w.cmd, err)
	}
	if msg, ok := f.Metadata[interop.KeyError]; ok {
		p.stop()
		return nil, nil, fmt.Errorf("worker %s: its hello reply is an error: %s", w.cmd, msg)
	}
	return p, f.Metadata, nil
}

// Close ends every worker process: it closes their stdin, waits briefly
// for them to exit and kills what remains. Requests in flight finish
// first.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.closing)
		if w.pipes != nil {
			for i := 0; i < cap(w.sem); i++ {
				w.sem <- struct{}{} // requests in flight finish first
			}
			for _, pp := range w.pipes {
				pp.stop()
			}
			return
		}
		for i := 0; i < w.opt.Procs; i++ {
			if p := <-w.slots; p != nil {
				p.stop()
			}
		}
		close(w.slots)
	})
	return nil
}

// proc is one running worker process.
type proc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	stderr *tail
	done   chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, valid after done
	status *os.File      // the supervisor's status pipe (nil: no supervisor)
	exit   string        // the supervisor's status line ("exit N", "signal N"), valid after done
	shell  bool          // the command line keeps the shell (its exit status 128+n is signal n)
}

func launch(line string, opt Options) (*proc, error) {
	c, status, err := command(line)
	if err != nil {
		return nil, err
	}
	c.Dir = opt.Dir
	inR, inW, err := os.Pipe()
	if err != nil {
		closeStatus(c, status)
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		closeStatus(c, status)
		return nil, err
	}
	p := &proc{cmd: c, stdin: inW, stdout: outR, stderr: &tail{max: stderrTail}, done: make(chan struct{}), shell: execPrefix(line) == "", status: status}
	c.Stdin, c.Stdout = inR, outW
	c.Stderr = p.stderr
	if opt.Stderr != nil {
		c.Stderr = io.MultiWriter(p.stderr, opt.Stderr)
	}
	c.WaitDelay = time.Second
	err = c.Start()
	inR.Close()
	outW.Close()
	for _, f := range c.ExtraFiles {
		f.Close() // the status pipe's write end: the supervisor's now
	}
	if err != nil {
		inW.Close()
		outR.Close()
		if status != nil {
			status.Close()
		}
		return nil, err
	}
	go func() {
		p.err = c.Wait()
		if status != nil {
			status.SetReadDeadline(time.Now().Add(time.Second))
			b, _ := io.ReadAll(io.LimitReader(status, 64))
			status.Close()
			p.exit = strings.TrimSpace(string(b))
		}
		close(p.done)
	}()
	return p, nil
}

// exchange sends one frame and reads one back within timeout, the reply
// at most max bytes. On failure it returns the kind: Crash (the stream
// ended, or the process exited with a child holding its stdout), Timeout
// or Malformed; outside reports a crash by a signal from outside.
func (p *proc) exchange(payload []byte, timeout time.Duration, max int64, limit string) (reply []byte, kind string, outside bool, err error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if err := WriteFrame(p.stdin, payload); err != nil {
			ch <- result{err: fmt.Errorf("writing the request: %w", err)}
			return
		}
		b, err := readFrame(p.stdout, max, limit)
		ch <- result{b, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	done := p.done
	for {
		select {
		case r := <-ch:
			switch {
			case r.err == nil:
				return r.b, "", false, nil
			case errors.Is(r.err, errFrameTooLarge):
				return nil, Malformed, false, r.err
			}
			err, outside := p.deathMessage(r.err)
			return nil, Crash, outside, err
		case <-done:
			// The process exited. A reply it wrote before exiting may still
			// be in the pipe; otherwise whatever holds its stdout open (a
			// process it started) must not make this wait for the timeout.
			done = nil
			select {
			case r := <-ch:
				ch <- r
				continue
			case <-time.After(500 * time.Millisecond):
			}
			what, outside := p.exitStatus()
			return nil, Crash, outside, fmt.Errorf("the worker exited before replying (%s) while a process it started keeps its stdout open", what)
		case <-t.C:
			p.kill()
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
			return nil, Timeout, false, fmt.Errorf("no reply within %v; killed", timeout)
		}
	}
}

// exited reports whether the process has been waited for.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// deathMessage describes why the stream ended, with the exit status if
// the process exits soon after; outside reports a signal from outside.
func (p *proc) deathMessage(err error) (error, bool) {
	what := "the worker closed its stdout"
	switch {
	case errors.Is(err, io.EOF):
	case errors.Is(err, io.ErrUnexpectedEOF):
		what = "the worker's reply ended early"
	default:
		what = err.Error()
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		return fmt.Errorf("%s (the process is still running)", what), false
	}
	st, outside := p.exitStatus()
	return fmt.Errorf("%s: %s", what, st), outside
}

// exitStatus describes how the process ended (valid after done) and
// whether a signal from outside ended it.
func (p *proc) exitStatus() (string, bool) {
	if p.exit != "" { // the supervisor's report of the worker
		return reportedStatus(p.exit, p.shell)
	}
	if p.err == nil {
		return "it exited with status 0", false
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		return p.err.Error(), false
	}
	sig, outside := outsideSignal(ee.ProcessState, p.shell)
	if outside {
		return fmt.Sprintf("%v: killed by %s, a signal from outside", p.err, sig), true
	}
	return p.err.Error(), false
}

// kill kills the process group. The group outlives its leader while any
// member runs (say a worker the shell started), and its id is not reused
// while it exists.
// Under a supervisor (Linux) it asks the supervisor, which kills the
// worker's whole tree, setsid'd descendants included.
func (p *proc) kill() { terminate(p.cmd, p.status != nil) }

// stop closes stdin, gives the process a moment to exit and kills it.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	p.kill() // what is left of the tree
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		killGroup(p.cmd) // a supervisor that did not answer
	}
	<-p.done
	p.stdout.Close()
}

func closeStatus(c *exec.Cmd, status *os.File) {
	if status != nil {
		status.Close()
	}
	for _, f := range c.ExtraFiles {
		f.Close()
	}
}

// execPrefix is "exec " for a simple command line (one program and its
// arguments), so that the shell replaces itself with the worker; "" for
// anything the shell must interpret (lists, pipes, redirections,
// substitutions, variable assignments, an explicit exec).
func execPrefix(line string) string {
	t := strings.TrimSpace(line)
	first, _, _ := strings.Cut(t, " ")
	if t == "" || strings.ContainsAny(t, ";&|<>()`$\n\\") || strings.Contains(first, "=") || first == "exec" {
		return ""
	}
	return "exec "
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, b...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// lastLines returns the last n non-empty lines of s, joined by " | " and
// cut to max bytes.
func lastLines(s string, n, max int) string {
	var ls []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	out := strings.Join(ls, " | ")
	if len(out) > max {
		out = "…" + out[len(out)-max:]
	}
	return out
}

// Capacity is how many requests the worker serves at once: its processes
// times the requests each may hold in flight (max_inflight, protocol 2).
// A campaign runs that many more goroutines than it has cores, so that
// the processes are kept busy while attnvet computes.
func (w *Worker) Capacity() int {
	return w.opt.Procs * max(1, w.decl.inflight)
}

// SkipReason is the reason the hello's declarations exclude in (its
// family, sizes, a sink the worker does not take), "" when they do not:
// a campaign may ask before computing a reference it would not use. A
// case whose values a declared dtype cannot hold is found only when it is
// encoded (Run's *SkipError).
func (w *Worker) SkipReason(in *problem.Inputs) string { return w.decl.skipReason(in) }
