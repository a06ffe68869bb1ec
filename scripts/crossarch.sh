#!/usr/bin/env bash
# Cross-architecture determinism check.
#
# The golden hashes in internal/determinism/testdata/hashes.txt are recorded
# on amd64 (GOAMD64=v1: no FMA). This script checks that other builds give
# the same bits for the generator, the reference and every emulation:
#   1. amd64, the default build;
#   2. amd64 with GOAMD64=v3, where the compiler may fuse a*b+c into FMA
#      (skipped if this CPU cannot run v3 code);
#   3. arm64 (the compiler fuses there too), cross-compiled with
#      GOARCH=arm64 go test -c and run under qemu-aarch64-static; the
#      case generator's tests run there as well.
# It fails if any hash differs. qemu-user-static is installed with apt-get
# when missing (as root; apt-get update first if the package lists are empty).
#
# Usage: scripts/crossarch.sh        (from anywhere in the repository)
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

now() { date +%s.%N; }
step() { # step NAME CMD...: run, time, record failure
	local name=$1; shift
	local t0 t1
	t0=$(now)
	echo "== $name"
	if "$@"; then status=ok; else status=FAIL; fail=1; fi
	t1=$(now)
	awk -v n="$name" -v s="$status" -v a="$t0" -v b="$t1" 'BEGIN { printf "== %s: %s (%.1f s)\n", n, s, b - a }'
}

need_qemu() {
	command -v qemu-aarch64-static >/dev/null && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "crossarch: qemu-aarch64-static is missing; install the Debian package qemu-user-static" >&2
		return 1
	fi
	if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
		apt-get update
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-user-static
}

cpu_has_v3() {
	[ "$(uname -m)" = x86_64 ] || return 1
	local f
	for f in avx2 fma bmi1 bmi2 f16c movbe; do
		grep -qw "$f" /proc/cpuinfo || return 1
	done
}

step "amd64 (default build)" "$GO" test -count=1 ./internal/determinism

if cpu_has_v3; then
	step "amd64 GOAMD64=v3 (FMA allowed)" env GOAMD64=v3 "$GO" test -count=1 ./internal/determinism
else
	echo "== amd64 GOAMD64=v3: skipped (this CPU cannot run v3 code)"
fi

if need_qemu; then
	build_arm64() {
		GOARCH=arm64 "$GO" test -c -o "$tmp/determinism.test" ./internal/determinism &&
			GOARCH=arm64 "$GO" test -c -o "$tmp/cases.test" ./internal/cases
	}
	run_arm64() {
		# Tests read testdata relative to their package directory.
		(cd internal/determinism && qemu-aarch64-static "$tmp/determinism.test" -test.count=1 -test.v 2>&1 | grep -E '^(---|ok|PASS|FAIL)|hashes on|differ' ) &&
			(cd internal/cases && qemu-aarch64-static "$tmp/cases.test" -test.count=1)
	}
	step "arm64 build" build_arm64
	step "arm64 under qemu-aarch64-static" run_arm64
else
	fail=1
fi

if [ "$fail" != 0 ]; then
	echo "crossarch: FAIL" >&2
	exit 1
fi
echo "crossarch: ok"
