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
