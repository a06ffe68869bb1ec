package campaign

// The results journal (docs/json.md, "The journal"): OutDir/journal.jsonl,
// append-only, one line per record:
//
//	{"crc32":"1c291ca3","rec":{"kind":"batch",...}}
//
// where crc32 is the IEEE CRC-32 of the bytes of rec as written. A header
// record opens the file; each batch record holds the outcomes of the
// cases at positions [from, to) of the campaign's case order (batches are
// contiguous, so the journal covers a prefix); an end record says the
// search stopped. A reader takes the records up to the first one that is
// cut, fails its checksum or does not continue the prefix: a file cut at
// any byte reads as the campaign up to its last whole batch.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/attnvet/attnvet/internal/safeio"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

// JournalFile is the journal's name in the campaign's OutDir.
const JournalFile = "journal.jsonl"

// JournalVersion is the journal format version.
const JournalVersion = 1

// maxJournalLine bounds one record, so a damaged file cannot take the
// memory of the machine (a header with a large corpus is the longest).
const maxJournalLine = 256 << 20

// JournalHeader is the first record: everything that decides which cases
// the campaign runs and how they are judged, so --resume needs nothing
// else.
type JournalHeader struct {
	Kind        string   `json:"kind"` // "header"
	Version     int      `json:"version"`
	Command     string   `json:"command"`
	Seed        uint64   `json:"seed"`
	Shard       string   `json:"shard"`
	Family      string   `json:"family,omitempty"`
	Criterion   string   `json:"criterion"`
	Targets     []string `json:"targets"`
	Cases       int      `json:"case_budget"`
	TimeBudget  float64  `json:"time_budget_s"`
	Save        int      `json:"save"`
	Shrink      int      `json:"shrink_budget"`
	MaxFailures int      `json:"max_failures"`
	Recheck     int      `json:"recheck,omitempty"` // Options.Recheck
	// Known (sorted) and SaveFindings are Options.Known and SaveFindings:
	// a resumed campaign keeps looking past the same findings.
	Known        []string `json:"known,omitempty"`
	SaveFindings bool     `json:"save_findings,omitempty"`
	// CaseTimeout and WorkerProfile are the exec-target options (0, "":
	// defaults); ReplayFlags the flags replay commands carry.
	CaseTimeout   float64         `json:"case_timeout_s,omitempty"`
	WorkerProfile string          `json:"worker_profile,omitempty"`
	ReplayFlags   []string        `json:"replay_flags,omitempty"`
	Corpus        []JournalCorpus `json:"corpus"` // the whole corpus, before sharding
	Started       string          `json:"started"`
}

// JournalCorpus is one corpus case as the campaign read it.
type JournalCorpus struct {
	Name string          `json:"name"`
	Path string          `json:"path,omitempty"`
	Case json.RawMessage `json:"case"`
}

type journalBatch struct {
	Kind    string         `json:"kind"` // "batch"
	From    int            `json:"from"`
	To      int            `json:"to"`
	Elapsed float64        `json:"elapsed_s"` // campaign time so far, over every resumed part
	Worker  []worker.Stats `json:"worker,omitempty"`
	// Cases are the outcomes of the batch's cases that are not plain, in
	// order; Plain sums up the plain ones (all of them plain: Cases
	// empty). A campaign that records every check (Options.Record, for
	// JUnit) journals every case in Cases.
	Cases []journalCase `json:"cases"`
	Plain *journalPlain `json:"plain,omitempty"`
}

// journalPlain sums up plain cases: no class error, not invalid, no
// contract violation, every check a pass or incompatible. That is all
// the result keeps of them (counts, classes, the worst ratio), so a
// campaign of a correct kernel journals a few hundred bytes per batch.
type journalPlain struct {
	Cases   int                  `json:"cases"`
	Corpus  int                  `json:"corpus_cases,omitempty"`
	Classes map[string]int       `json:"classes"`
	Targets []journalPlainTarget `json:"targets"`
}

type journalPlainTarget struct {
	Checks       int   `json:"checks,omitempty"`
	Incompatible int   `json:"incompatible,omitempty"`
	Elements     int64 `json:"elements,omitempty"`
	Skipped      int64 `json:"skipped,omitempty"`
	// The largest ratio of the target's checks (the first on ties), at
	// position WorstSeq (−1: none had a worst element).
	Worst     Ratio `json:"worst"`
	WorstElem int   `json:"worst_elem"`
	WorstSeq  int   `json:"worst_seq"`
}

func newPlain(targets int) *journalPlain {
	p := &journalPlain{Classes: map[string]int{}, Targets: make([]journalPlainTarget, targets)}
	for i := range p.Targets {
		p.Targets[i].WorstSeq = -1
	}
	return p
}

// plain reports whether co is a plain case (journalPlain).
func (co *caseOut) plain() bool {
	if co.classErr != nil || co.invalid != nil || len(co.violations) > 0 {
		return false
	}
	for _, ch := range co.checks {
		if ch.status != Pass && ch.status != Incompatible {
			return false
		}
	}
	return true
}

// add sums up the plain case at position seq, as aggregator.add would
// count it.
func (p *journalPlain) add(seq int, corpus bool, co *caseOut) {
	p.Cases++
	if corpus {
		p.Corpus++
	}
	for _, c := range co.classes {
		p.Classes[c]++
	}
	for ti, ch := range co.checks {
		t := &p.Targets[ti]
		if ch.status == Incompatible {
			t.Incompatible++
			continue
		}
		t.Checks++
		t.Elements += int64(ch.v.Checked)
		t.Skipped += int64(ch.v.Skipped)
		if ch.v.WorstElem >= 0 && (t.WorstSeq < 0 || greater(ch.v.Worst, float64(t.Worst))) {
			t.Worst, t.WorstElem, t.WorstSeq = Ratio(ch.v.Worst), ch.v.WorstElem, seq
		}
	}
}

type journalEnd struct {
	Kind    string  `json:"kind"` // "end"
	Stopped string  `json:"stopped"`
	Cases   int     `json:"cases"`
	Elapsed float64 `json:"elapsed_s"`
}

// journalCase is one case's outcome (a caseOut), enough to rebuild every
// count, example and failure of the result: the case itself is
// regenerated from (seed, index) or taken from the header's corpus.
type journalCase struct {
	Seq        int                 `json:"seq"`
	Classes    []string            `json:"classes,omitempty"`
	ClassErr   string              `json:"class_err,omitempty"`
	Violations []problem.Violation `json:"violations,omitempty"`
	Invalid    string              `json:"invalid,omitempty"`
	Checks     []journalCheck      `json:"checks"`
	// Rechecked: the case was rechecked (Options.Recheck); Rechecks its
	// recheck failures.
	Rechecked bool         `json:"rechecked,omitempty"`
	Rechecks  []recheckOut `json:"rechecks,omitempty"`
}

type journalCheck struct {
	Status    Status `json:"status"`
	Worst     Ratio  `json:"worst"`
	WorstElem int    `json:"worst_elem"`
	Failed    int    `json:"failed,omitempty"`
	Checked   int    `json:"checked,omitempty"`
	Skipped   int    `json:"skipped,omitempty"`
	Pass      bool   `json:"pass,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Err       string `json:"err,omitempty"`
	Kind      string `json:"worker_kind,omitempty"`
	// LSE and FailedOutputs are the verdict's (tolerance.Verdict): kept so
	// a resumed campaign's failures name the outputs that failed.
	LSE           *tolerance.LSEVerdict `json:"lse,omitempty"`
	FailedOutputs []string              `json:"failed_outputs,omitempty"`
	// Term and Row are the verdict's WorstTerm and WorstRow (findings'
	// signatures); a journal written before them has neither.
	Term     string                `json:"term,omitempty"`
	Row      string                `json:"row_class,omitempty"`
	MaxLogit *tolerance.LSEVerdict `json:"max_logit,omitempty"`
}

func toJournal(seq int, co *caseOut) journalCase {
	jc := journalCase{Seq: seq, Classes: co.classes, Violations: co.violations, Checks: make([]journalCheck, len(co.checks))}
	if co.classErr != nil {
		jc.ClassErr = co.classErr.Error()
	}
	if co.invalid != nil {
		jc.Invalid = co.invalid.Error()
	}
	for i, ch := range co.checks {
		jc.Checks[i] = journalCheck{Status: ch.status, Worst: Ratio(ch.v.Worst), WorstElem: ch.v.WorstElem, Failed: ch.v.Failed,
			Checked: ch.v.Checked, Skipped: ch.v.Skipped, Pass: ch.v.Pass, Detail: ch.v.Detail, Err: ch.err, Kind: ch.kind,
			LSE: ch.v.LSE, FailedOutputs: ch.v.FailedOutputs, MaxLogit: ch.v.MaxLogit, Term: ch.v.WorstTerm, Row: ch.v.WorstRow}
	}
	return jc
}

func fromJournal(jc *journalCase, crit string) caseOut {
	co := caseOut{classes: jc.Classes, violations: jc.Violations, checks: make([]checkOut, len(jc.Checks))}
	if jc.ClassErr != "" {
		co.classErr = errors.New(jc.ClassErr)
	}
	if jc.Invalid != "" {
		co.invalid = errors.New(jc.Invalid)
	}
	for i, c := range jc.Checks {
		co.checks[i] = checkOut{status: c.Status, err: c.Err, kind: c.Kind, v: tolerance.Verdict{Criterion: crit, Pass: c.Pass,
			Worst: float64(c.Worst), WorstElem: c.WorstElem, Failed: c.Failed, Checked: c.Checked, Skipped: c.Skipped, Detail: c.Detail,
			LSE: c.LSE, FailedOutputs: c.FailedOutputs, MaxLogit: c.MaxLogit, WorstTerm: c.Term, WorstRow: c.Row}}
	}
	return co
}

// Journal is a journal as read back: its header, the outcomes of the
// prefix of the case order it covers, and how the search ended (nil: it
// was killed, or is still running).
type Journal struct {
	Path    string
	Header  JournalHeader
	Done    int         // cases journaled: positions 0..Done-1
	End     *journalEnd // the last record, if it is an end
	Elapsed float64     // campaign seconds at the last record
	Worker  []worker.Stats

	size int64 // bytes of whole, valid records
}

// Finished reports whether the journaled search ran to its end (a case or
// time budget), as opposed to being killed or stopped by a signal.
func (j *Journal) Finished() bool { return j.End != nil && j.End.Stopped != "signal" }

// Corpus is the campaign's corpus as its header recorded it.
func (j *Journal) Corpus() ([]NamedCase, error) {
	var out []NamedCase
	for _, jc := range j.Header.Corpus {
		c, err := cases.Parse(jc.Case)
		if err != nil {
			return nil, fmt.Errorf("%s: corpus case %s: %v", j.Path, jc.Name, err)
		}
		out = append(out, NamedCase{Name: jc.Name, Path: jc.Path, Case: c})
	}
	return out, nil
}

// ErrNoJournal is LoadJournal's error when the directory holds no journal
// with a whole header.
var ErrNoJournal = errors.New("no campaign journal")

// LoadJournal reads dir/journal.jsonl up to its last whole record.
func LoadJournal(dir string) (*Journal, error) {
	j, err := LoadJournalFile(filepath.Join(dir, JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoJournal)
	}
	return j, err
}

// IsJournal reports whether b starts with a journal's header record.
func IsJournal(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	kind, _, ok := decodeRecord(line)
	return ok && kind == "header"
}

// LoadJournalFile reads a journal file up to its last whole record.
func LoadJournalFile(path string) (*Journal, error) {
	f, _, err := safeio.Open(path) // refuses a FIFO or device without blocking on it
	if err != nil {
		return nil, err
	}
	defer f.Close()
	j, err := readJournal(f)
	if errors.Is(err, ErrNoJournal) {
		return nil, fmt.Errorf("%s: %w (no whole header record)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	j.Path = path
	return j, nil
}

func readJournal(r io.Reader) (*Journal, error) { return scanJournal(r, nil) }

// scanJournal reads a journal, passing each valid batch to batch (if not
// nil): the batches are not kept, so a resumed campaign's memory does not
// grow with its journal.
func scanJournal(r io.Reader, batch func(*journalBatch)) (*Journal, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	j := &Journal{}
	first := true
	for {
		line, err := readLine(br)
		if err != nil {
			break // EOF, a cut last line or an over-long one: the journal ends here
		}
		kind, payload, ok := decodeRecord(line)
		if !ok {
			break
		}
		if first {
			if kind != "header" || json.Unmarshal(payload, &j.Header) != nil {
				break
			}
			if j.Header.Version < 1 || j.Header.Version > JournalVersion {
				return nil, fmt.Errorf("journal version %d: this attnvet reads version %d", j.Header.Version, JournalVersion)
			}
			first = false
			j.size += int64(len(line))
			continue
		}
		switch kind {
		case "batch":
			var b journalBatch
			if json.Unmarshal(payload, &b) != nil || !j.validBatch(&b) {
				return j.done(first)
			}
			if batch != nil {
				batch(&b)
			}
			j.Done, j.Elapsed, j.Worker, j.End = b.To, b.Elapsed, b.Worker, nil
		case "end":
			var e journalEnd
			if json.Unmarshal(payload, &e) != nil || e.Cases != j.Done {
				return j.done(first)
			}
			j.End, j.Elapsed = &e, e.Elapsed
		default:
			return j.done(first)
		}
		j.size += int64(len(line))
	}
	return j.done(first)
}

// validBatch checks that b continues the journal: it starts where the
// last ended, and its cases and summary account for its positions once.
func (j *Journal) validBatch(b *journalBatch) bool {
	n := len(j.Header.Targets)
	plain := 0
	if b.Plain != nil {
		plain = b.Plain.Cases
		if len(b.Plain.Targets) != n || b.Plain.Corpus < 0 || plain < 0 {
			return false
		}
		for _, t := range b.Plain.Targets {
			if t.WorstSeq >= b.To || (t.WorstSeq < b.From && t.WorstSeq != -1) {
				return false
			}
		}
	}
	if b.From != j.Done || b.To != b.From+len(b.Cases)+plain {
		return false
	}
	prev := b.From - 1
	for i := range b.Cases {
		c := &b.Cases[i]
		if c.Seq <= prev || c.Seq >= b.To || len(c.Checks) != n {
			return false
		}
		prev = c.Seq
	}
	return true
}

// replay reads j's file again up to its last valid record, passing each
// batch to fn.
func (j *Journal) replay(fn func(*journalBatch)) error {
	f, err := os.Open(j.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	again, err := scanJournal(io.LimitReader(f, j.size), fn)
	if err != nil {
		return err
	}
	if again.Done != j.Done {
		return fmt.Errorf("%s changed while it was read", j.Path)
	}
	return nil
}

func (j *Journal) done(noHeader bool) (*Journal, error) {
	if noHeader {
		return nil, ErrNoJournal
	}
	return j, nil
}

// readLine reads one '\n'-terminated line (with the '\n'); a last line
// without one is cut, an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > maxJournalLine {
			return nil, fmt.Errorf("record longer than %d bytes", maxJournalLine)
		}
		buf = append(buf, frag...)
		if err == nil {
			return buf, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

type envelope struct {
	CRC string          `json:"crc32"`
	Rec json.RawMessage `json:"rec"`
}

func encodeRecord(rec any) ([]byte, error) {
	p, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"crc32":"%08x","rec":`, crc32.ChecksumIEEE(p))
	b.Write(p)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func decodeRecord(line []byte) (kind string, payload []byte, ok bool) {
	var e envelope
	if json.Unmarshal(line, &e) != nil || fmt.Sprintf("%08x", crc32.ChecksumIEEE(e.Rec)) != e.CRC {
		return "", nil, false
	}
	var k struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(e.Rec, &k) != nil {
		return "", nil, false
	}
	return k.Kind, e.Rec, true
}

// journalWriter appends records to the journal, each synced to disk.
type journalWriter struct {
	f    *os.File
	base []worker.Stats // worker counts of the parts before this one
	err  error          // the first write error: the journal stops, the campaign goes on
}

// createJournal starts dir/journal.jsonl with hdr (replacing any old
// one).
func createJournal(dir string, hdr *JournalHeader) (*journalWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, JournalFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	w := &journalWriter{f: f}
	if err := w.write(hdr); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// appendJournal reopens j's file for appending after its last whole
// record (a cut or damaged tail is cut off).
func appendJournal(j *Journal) (*journalWriter, error) {
	f, err := os.OpenFile(j.Path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(j.size); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(j.size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &journalWriter{f: f, base: j.Worker}, nil
}

func (w *journalWriter) write(rec any) error {
	if w.err != nil {
		return w.err
	}
	b, err := encodeRecord(rec)
	if err == nil {
		_, err = w.f.Write(b)
	}
	if err == nil {
		err = w.f.Sync()
	}
	w.err = err
	return err
}

func (w *journalWriter) close() {
	if w != nil {
		w.f.Close()
	}
}

// workerTotals adds the counts of the parts before this one to now's.
func (w *journalWriter) workerTotals(now []worker.Stats) []worker.Stats {
	out := make([]worker.Stats, len(now))
	copy(out, now)
	for i := range out {
		if i < len(w.base) {
			addStats(&out[i], &w.base[i])
		}
	}
	return out
}

// Options are the options of j's campaign, from its header, on top of
// base (which keeps what does not change the result: Workers, Progress,
// Record, Now). The caller resolves and sets Targets (Header.Targets,
// with CaseTimeout and WorkerProfile).
func (j *Journal) Options(base Options) (Options, error) {
	h := &j.Header
	o := base
	var err error
	if o.Shard, err = ParseShard(h.Shard); err != nil {
		return o, fmt.Errorf("%s: %v", j.Path, err)
	}
	if o.Criterion, err = tolerance.Lookup(h.Criterion); err != nil {
		return o, fmt.Errorf("%s: %v", j.Path, err)
	}
	if o.Corpus, err = j.Corpus(); err != nil {
		return o, err
	}
	o.Command, o.Seed, o.Family, o.Cases = h.Command, h.Seed, problem.Family(h.Family), h.Cases
	o.Time = time.Duration(h.TimeBudget * float64(time.Second))
	o.Save, o.ShrinkBudget, o.MaxFailures = h.Save, h.Shrink, h.MaxFailures
	o.Recheck = h.Recheck
	if o.Known == nil && len(h.Known) > 0 { // a --known given to --resume replaces the journal's
		o.Known = map[string]bool{}
		for _, k := range h.Known {
			o.Known[k] = true
		}
	}
	o.SaveFindings = o.SaveFindings || h.SaveFindings
	o.ReplayFlags, o.WorkerProfile = h.ReplayFlags, h.WorkerProfile
	o.CaseTimeout = time.Duration(h.CaseTimeout * float64(time.Second))
	o.OutDir, o.Journal, o.Resume = filepath.Dir(j.Path), true, j
	return o, nil
}

// matches checks that opt is the campaign j journaled, so resuming it
// neither mixes two campaigns nor changes which cases a shard covers.
func (j *Journal) matches(opt *Options) error {
	h := &j.Header
	names := targetNames(opt.Targets)
	switch {
	case h.Seed != opt.Seed || h.Shard != opt.Shard.String() || h.Family != string(opt.Family) || h.Cases != opt.Cases:
		return fmt.Errorf("%s: the journal is of seed %d shard %s family %q cases %d, not of this campaign", j.Path, h.Seed, h.Shard, h.Family, h.Cases)
	case h.Criterion != opt.Criterion.Name() || fmt.Sprint(h.Targets) != fmt.Sprint(names):
		return fmt.Errorf("%s: the journal judges %v with %s, not %v with %s", j.Path, h.Targets, h.Criterion, names, opt.Criterion.Name())
	case len(h.Corpus) != len(opt.Corpus):
		return fmt.Errorf("%s: the journal's corpus has %d cases, not %d", j.Path, len(h.Corpus), len(opt.Corpus))
	}
	return nil
}
