package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is set by -ldflags "-X main.version=..."; otherwise the module version.
var version = ""

func init() {
	register(command{name: "version", summary: "print the attnvet version: module version, VCS revision, Go version", run: func(e *env, args []string) int {
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(e.stdout, versionLine(version, bi))
		return exitPass
	}})
}

// versionLine is "attnvet VERSION (revision REV[, modified], TIME; GO)":
// the -X version, else the module version go install records
// (v1.2.3, or a pseudo-version for a commit), else "devel" (go build or go
// run in a checkout, which Go may leave as "(devel)"), with the VCS
// revision go build stamps from a checkout.
func versionLine(ldVersion string, bi *debug.BuildInfo) string {
	v := ldVersion
	if bi == nil {
		if v == "" {
			v = "devel"
		}
		return "attnvet " + v + " (no build information)"
	}
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	var parts []string
	if rev := set["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		r := "revision " + rev
		if set["vcs.modified"] == "true" {
			r += ", modified"
		}
		if t := set["vcs.time"]; t != "" {
			r += ", " + t
		}
		parts = append(parts, r)
	}
	if bi.Main.Path != "" && bi.Main.Path != "github.com/attnvet/attnvet" {
		parts = append(parts, "module "+bi.Main.Path)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	if len(parts) == 0 {
		return "attnvet " + v
	}
	return "attnvet " + v + " (" + strings.Join(parts, "; ") + ")"
}
