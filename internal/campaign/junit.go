package campaign

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// JUnit XML as Jenkins, GitLab and GitHub test reporters read it: one
// <testsuite> per target, one <testcase> per target × case. A failed check
// is a <failure> whose message holds the replay command; a contract
// violation or an incompatible dtype is <skipped>; a case that could not
// be built is an <error>. A worker failure (the external kernel crashed,
// timed out, replied malformed or reported an error) is a <failure> of
// type worker_KIND.

// JUnitSuites is the document root.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one target.
type JUnitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	Cases      []JUnitCase     `xml:"testcase"`
}

// JUnitProperty is a name/value pair of a suite.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one target × case.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *JUnitMessage `xml:"failure,omitempty"`
	Error     *JUnitMessage `xml:"error,omitempty"`
	Skipped   *JUnitMessage `xml:"skipped,omitempty"`
}

// JUnitMessage is a failure, error or skip.
type JUnitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// JUnit renders r's records (Options.Record) as JUnit XML.
func JUnit(r *Result, name string, elapsed time.Duration) []byte {
	doc := JUnitSuites{Name: name, Time: seconds(elapsed)}
	idx := map[string]int{}
	var props []JUnitProperty
	if len(r.Runs) > 0 {
		run := r.Runs[0]
		props = []JUnitProperty{{"seed", fmt.Sprint(run.Seed)}, {"criterion", run.Criterion}, {"shard", run.Shard}}
	}
	for _, t := range r.Targets {
		idx[t.Name] = len(doc.Suites)
		doc.Suites = append(doc.Suites, JUnitSuite{Name: t.Name, Time: "0", Properties: props})
	}
	for _, rec := range r.Records {
		i, ok := idx[rec.Target]
		if !ok {
			idx[rec.Target] = len(doc.Suites)
			i = len(doc.Suites)
			doc.Suites = append(doc.Suites, JUnitSuite{Name: rec.Target, Time: "0"})
		}
		s := &doc.Suites[i]
		tc := JUnitCase{Name: rec.Case, Classname: "attnvet." + rec.Target}
		switch rec.Status {
		case Fail:
			tc.Failure = failureMessage(&rec)
			s.Failures++
		case WorkerFailed:
			tc.Failure = workerMessage(&rec)
			s.Failures++
		case Contract, Incompatible, Skipped:
			tc.Skipped = &JUnitMessage{Message: clip(rec.Detail, 500)}
			if rec.Status == Skipped {
				tc.Skipped.Message = "the worker's hello excludes this case: " + clip(rec.Detail, 400)
			}
			if rec.Status == Incompatible {
				tc.Skipped.Message = "the case pins an input dtype this kernel does not take"
			}
			s.Skipped++
		case Invalid:
			tc.Error = &JUnitMessage{Message: clip(rec.Detail, 500), Type: "invalid_case"}
			s.Errors++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	if !r.Complete {
		// A stopped run is never a pass: the cases it did not run are an
		// error of every suite, not silence.
		msg := "the campaign was interrupted before every case ran: not a pass"
		for _, run := range r.Runs {
			if run.Missing != nil {
				msg += fmt.Sprintf("; shard %s did not run %s", run.Shard, missingText(run.Missing))
			}
		}
		for _, g := range r.Gaps {
			if g.Absent && g.AbsentShards > 0 {
				msg += fmt.Sprintf("; %d shards of %s from %s on are missing", g.AbsentShards, g.Campaign, g.Shard)
			} else if g.Absent {
				msg += fmt.Sprintf("; shard %s of %s is missing", g.Shard, g.Campaign)
			}
		}
		for i := range doc.Suites {
			s := &doc.Suites[i]
			s.Cases = append(s.Cases, JUnitCase{Name: "campaign incomplete", Classname: "attnvet." + s.Name,
				Error: &JUnitMessage{Message: clip(msg, 2000), Type: "incomplete"}})
			s.Tests++
			s.Errors++
		}
	}
	for _, s := range doc.Suites {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
	}
	b, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		panic("campaign: " + err.Error())
	}
	return append([]byte(xml.Header), append(b, '\n')...)
}

func failureMessage(rec *Record) *JUnitMessage {
	f := rec.Failure
	m := &JUnitMessage{Type: "mismatch"}
	var what string
	if f != nil && f.Recheck != "" {
		m.Type = f.Recheck
		what = f.Recheck + ": " + f.Detail
	} else if f != nil && f.Error != "" {
		m.Type = "kernel_error"
		what = f.Error
	} else if f != nil {
		what = fmt.Sprintf("%d of %d elements beyond the %s allowance, worst err/allowed %s",
			f.FailedElements, f.Elements, f.Criterion, f.Worst)
	}
	var body strings.Builder
	if f != nil && f.Replay != "" {
		m.Message = fmt.Sprintf("%s; replay: %s", what, f.Replay)
		fmt.Fprintf(&body, "replay: %s\n", f.Replay)
	} else {
		m.Message = fmt.Sprintf("%s; replay: save the case below to FILE.json and run attnvet replay FILE.json --kernel %s", what, rec.Target)
	}
	if f != nil {
		if f.Detail != "" {
			fmt.Fprintf(&body, "%s\n", f.Detail)
		}
		fmt.Fprintf(&body, "case: %s\n", f.Input.String())
		if f.Shrunk != nil {
			fmt.Fprintf(&body, "shrunk: %s\n", f.Shrunk.String())
		}
	}
	m.Body = body.String()
	return m
}

// workerMessage is a worker failure: type worker_crash, worker_timeout,
// worker_malformed or worker_reported.
func workerMessage(rec *Record) *JUnitMessage {
	w := rec.Worker
	if w == nil {
		return &JUnitMessage{Type: "worker", Message: clip(rec.Detail, 500)}
	}
	m := &JUnitMessage{Type: "worker_" + w.Kind}
	var body strings.Builder
	if w.Replay != "" {
		m.Message = fmt.Sprintf("%s; replay: %s", clip(w.Error, 500), w.Replay)
		fmt.Fprintf(&body, "replay: %s\n", w.Replay)
	} else {
		m.Message = fmt.Sprintf("%s; replay: save the case below to FILE.json and run attnvet replay FILE.json --kernel %s", clip(w.Error, 500), rec.Target)
	}
	fmt.Fprintf(&body, "%s\ncase: %s\n", w.Error, w.Input.String())
	m.Body = body.String()
	return m
}

// missingText is a Missing for a message.
func missingText(m *Missing) string {
	var parts []string
	switch {
	case m.Cases > 0:
		parts = append(parts, fmt.Sprintf("indices %d..%d step %d (%d cases)", m.From, m.To, m.Step, m.Cases))
	case m.Cases < 0:
		parts = append(parts, fmt.Sprintf("indices from %d step %d", m.From, m.Step))
	}
	if m.Corpus > 0 {
		parts = append(parts, fmt.Sprintf("%d corpus cases", m.Corpus))
	}
	return strings.Join(parts, " and ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
