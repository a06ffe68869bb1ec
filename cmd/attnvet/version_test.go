package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	for _, c := range []struct {
		ld   string
		bi   *debug.BuildInfo
		want string
	}{
		{"", nil, "attnvet devel (no build information)"},
		{"v9", nil, "attnvet v9 (no build information)"},
		// go install github.com/attnvet/attnvet/cmd/attnvet@v1.2.0
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/attnvet/attnvet", Version: "v1.2.0"}},
			"attnvet v1.2.0 (go1.26.8)"},
		// go build in a checkout with local changes
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/attnvet/attnvet", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "4b243e1a2b3c4d5e6f708192a3b4c5d6e7f80911"}, {Key: "vcs.time", Value: "2026-12-02T05:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"attnvet devel (revision 4b243e1a2b3c, modified, 2026-12-02T05:00:00Z; go1.26.8)"},
		{"v2.0.0", &debug.BuildInfo{Main: debug.Module{Path: "github.com/attnvet/attnvet", Version: "v1.0.0"}}, "attnvet v2.0.0"},
	} {
		if got := versionLine(c.ld, c.bi); got != c.want {
			t.Errorf("versionLine(%q, …) = %q, want %q", c.ld, got, c.want)
		}
	}
}
