#!/usr/bin/env bash
# Run every native Go fuzz target of the module (go test -fuzz), one after
# the other, each for the given time, and summarise executions per target.
#
#   scripts/fuzz.sh [DURATION] [PACKAGE...]
#
# DURATION is any -fuzztime value: 60s (the default), 5m, 100000x.
# PACKAGE defaults to every package of the module (./...).
# Environment: ATTNVET_FUZZ_INJECT=pr301 injects PR #301's defect into the
# stream kernels (the targets must then fail); ATTNVET_FUZZ_NOCORPUS=1
# seeds from one plain case instead of corpus/; GOFLAGS passes through.
# New failing inputs land in testdata/fuzz/<Target>/ of their package; the
# failure message prints the shrunk case and the command that replays it.
# ATTNVET_FUZZ_REPORT_ONLY=1 (the CI step) reports a new failing input,
# with the file's content so the log alone replays it, as FOUND and still
# exits 0: a random find is a defect that was there before the change under
# test, and a gate that fails at random lands nothing. A target that does
# not build or whose seed corpus fails is still a failure.
# Exit status: 0 when every target ran clean, 1 otherwise.
set -u -o pipefail

dur="${1:-60s}"
shift || true
cd "$(dirname "$0")/.."
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	mapfile -t pkgs < <(go list ./...)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
summary=()
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		echo "=== $pkg $t ($dur)"
		if go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" 2>&1 | tee "$log"; then
			res=ok
		elif [ "${ATTNVET_FUZZ_REPORT_ONLY:-0}" = 1 ] &&
			found=$(grep -o 'Failing input written to [^ ]*' "$log" | tail -n 1 | sed 's/^Failing input written to //') &&
			[ -n "$found" ] && ! grep -q '^--- FAIL: .*seed#' "$log"; then
			res=FOUND
			echo "FOUND: $pkg $found (report-only):"
			cat "$(go list -f '{{.Dir}}' "$pkg")/$found" || true
		else
			res=FAIL
			status=1
		fi
		last=$(grep -o 'elapsed: .*' "$log" | tail -n 1)
		summary+=("$(printf '%-4s %-40s %-22s %s' "$res" "$pkg" "$t" "$last")")
	done
done
echo
echo "fuzz summary ($dur per target):"
printf '%s\n' "${summary[@]}"
exit $status
