#!/usr/bin/env bash
# attnvet fuzz against the torch harness a kernel team would write without
# it (scripts/fuzz_torch.py), side by side in one run, both on one core;
# prints each one's cases per CPU second and the ratio (docs/benchmarks-fuzz.md).
#
#   scripts/fuzz_vs_torch.sh [SECONDS]     (default 20 CPU seconds each)
#
# CPU time, not wall time: the machine may be shared, and CPU time per case
# is what load changes least. attnvet's is the process's user + system time
# (GNU time); the harness's is time.process_time.
set -euo pipefail
secs="${1:-20}"
cd "$(dirname "$0")/.."
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/attnvet" ./cmd/attnvet
# The harness runs the shapes of the cases attnvet fuzz --seed 1 judges
# (cases 0..2999: BF16, inside the contract, the rare large ones included),
# in the same order: both loops work on the same shapes. SHAPES=fuzzsize
# gives the harness the first 400 fuzz-size shapes instead (the older,
# lighter comparison: no n > 256 keys per row).
if [ "${SHAPES:-mix}" = fuzzsize ]; then
	go test ./internal/campaign -run '^TestWriteFuzzShapes$' -shapes "$tmp/shapes.json" >/dev/null
else
	go test ./internal/campaign -run '^TestWriteMixShapes$' -mix-shapes "$tmp/shapes.json" -mix-cases 3000 >/dev/null
fi

"$py" scripts/fuzz_torch.py "$tmp/shapes.json" --seconds "$secs" --json "$tmp/torch.json"

# attnvet fuzz runs until its CPU time reaches secs: a wall-clock budget
# would give it less CPU on a loaded machine, so give it a generous wall
# budget and a case count sized from a short calibration run.
/usr/bin/time -f '%U %S' -o "$tmp/cal.time" "$tmp/attnvet" fuzz --workers 1 --seed 1 --time 3s \
	--json "$tmp/cal.json" --out "$tmp/failures" --progress 0 >/dev/null
read -r u s <"$tmp/cal.time"
cal=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cases"])' "$tmp/cal.json")
n=$("$py" -c 'import sys; c,u,s,t=map(float,sys.argv[1:]); print(max(100,int(c/(u+s)*t)))' "$cal" "$u" "$s" "$secs")
/usr/bin/time -f '%U %S %e' -o "$tmp/fuzz.time" "$tmp/attnvet" fuzz --workers 1 --seed 1 --cases "$n" \
	--json "$tmp/fuzz.json" --out "$tmp/failures" --progress 0 >"$tmp/fuzz.out" || true
read -r u s e <"$tmp/fuzz.time"

"$py" - "$tmp/fuzz.json" "$u" "$s" "$e" "$tmp/torch.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
cpu, wall = float(sys.argv[2]) + float(sys.argv[3]), float(sys.argv[4])
t = json.load(open(sys.argv[5]))
# attnvet's rate counts judged cases only (its contract-violating and
# other-dtype cases cost it CPU but are not counted): the harness judges
# every case it runs.
a, b = f["checks"] / cpu, t["cases"] / t["cpu_s"]
print(f"attnvet fuzz, 1 worker: {f['cases']} cases ({f['checks']} judged), {f['failed_cases']} failing, {cpu:.2f} CPU-s, {wall:.2f} s wall: {a:.0f} judged cases per CPU second ({f['cases'] / cpu:.0f} cases)")
print(f"torch harness, 1 thread: {t['cases']} cases, {t['failed']} fail assert_close, {t['cpu_s']:.2f} CPU-s, {t['wall_s']:.2f} s wall: {b:.0f} cases per CPU second")
print(f"ratio (attnvet / torch), cases per CPU second: {a / b:.2f}x")
PY
