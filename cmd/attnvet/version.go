package main

import (
	"fmt"
	"runtime/debug"
)

// version is set by -ldflags "-X main.version=..."; otherwise the module version.
var version = ""

func init() {
	register(command{name: "version", summary: "print the attnvet version", run: func(e *env, args []string) int {
		v := version
		if v == "" {
			v = "devel"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
		}
		fmt.Fprintf(e.stdout, "attnvet %s\n", v)
		return exitPass
	}})
}
