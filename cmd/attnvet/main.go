// Command attnvet verifies low-precision attention kernels against a
// float64 reference. See README.md and 'attnvet help'.
//
// Exit codes: 0 pass, 1 a verified mismatch, 2 bad usage or bad input,
// 3 an internal error.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
