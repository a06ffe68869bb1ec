#!/usr/bin/env bash
# Hostile-input figures (issue 14): runs each reproducer against a fresh
# build of attnvet under /usr/bin/time -v and prints one table row per
# input: exit code (and the one documented), its one-line message (a
# campaign: its verdict line), peak RSS,
# wall time, and OK when the exit is the documented one, peak RSS is under
# 1 GiB and the command ended within its time bound (5 s for a single
# input; the campaign rows bound a whole campaign).
#
#   scripts/hostile.sh [WORKDIR]     (default: a fresh /tmp/attnvet-hostile.XXXX, removed)
#
# The inputs come from the tests' own builders (TestWriteHostileInputs in
# cmd/attnvet: the zip bombs, the shape overflow, the 2 GiB sparse file, the
# FIFO, the oversized case); the misbehaving workers are internal/worker's
# fake worker (every@3: a crash on every third request; gib-every@2: a
# 1 GiB reply on every other one). Exit 0 when every row is OK.
set -u -o pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
if [ $# -ge 1 ]; then
	w=$1
	mkdir -p "$w"
else
	w=$(mktemp -d /tmp/attnvet-hostile.XXXX)
	trap 'rm -rf "$w"' EXIT
fi
go build -o "$w/attnvet" ./cmd/attnvet || exit 1
go test -c -o "$w/worker.test" ./internal/worker || exit 1
go test -count=1 ./cmd/attnvet -run '^TestWriteHostileInputs$' -args -hostile-dir "$w" >/dev/null || exit 1
A=$w/attnvet
status=0
printf '| input | command | exit (documented) | message (campaign: verdict) | peak RSS | wall | |\n|---|---|---|---|---|---|---|\n'

# row NAME WANT_EXIT LIMIT_S CMD...: runs CMD under /usr/bin/time -v with
# a timeout, prints the table row.
row() {
	local name=$1 want=$2 limit=$3
	shift 3
	local out=$w/row.out err=$w/row.err tv=$w/row.time
	timeout -s KILL "$((limit + 5))" /usr/bin/time -v -o "$tv" "$@" >"$out" 2>"$err"
	local code=$?
	local rss wall first ok=OK
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv" 2>/dev/null)
	wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$tv" 2>/dev/null)
	code=$(awk -F': ' '/Exit status/ {print $2}' "$tv" 2>/dev/null || echo "$code")
	[ -z "$code" ] && code=killed
	# A single input: the first line on stderr (the one-line error), else
	# on stdout. A campaign (fuzz): the verdict, stdout's last line.
	if [ "$1" = "$A" ] && [ "${2:-}" = fuzz ]; then
		first=$(grep -v '^wrote ' "$out" | tail -n 1)
	elif [ -s "$err" ]; then
		first=$(head -n 1 "$err")
	else
		first=$(head -n 1 "$out")
	fi
	first=$(printf '%s' "$first" | cut -c1-110 | sed 's/|/\\|/g')
	local secs
	secs=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
	if [ "$code" != "$want" ]; then ok="FAIL (exit)"; fi
	if [ -z "$rss" ] || [ "$rss" -ge $((1 << 20)) ]; then ok="FAIL (RSS)"; fi
	if [ -z "$secs" ] || awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s > l) }'; then ok="FAIL (time)"; fi
	[ "$ok" = OK ] || status=1
	local cmd="${*:1:4}"
	cmd=${cmd//$w\//}
	printf '| %s | `%s` | %s (%s) | %s | %s MiB | %s s | %s |\n' "$name" "${cmd:0:60}" "$code" "$want" "$first" "$((${rss:-0} / 1024))" "$secs" "$ok"
}

row "1 MB zip-bomb npz" 2 5 "$A" check "$w/bomb-1m.npz"
row "6 MB zip-bomb npz" 2 5 "$A" check "$w/bomb-6m.npz"
row "/dev/zero" 2 5 "$A" check /dev/zero
row "2 GiB sparse file" 2 5 "$A" check "$w/sparse.safetensors"
row "FIFO: check" 2 5 "$A" check "$w/fifo"
row "FIFO: replay" 2 5 "$A" replay "$w/fifo"
row "FIFO: report --merge" 2 5 "$A" report --merge "$w/fifo"
row "h=64 d=4096 t=128 replay" 2 5 "$A" replay "$w/big.json" --kernel stream/bf16
row "ori_kv [0, 2^62, 1, 32]" 2 5 "$A" check "$w/overflow.safetensors"
row "aliased data_offsets" 2 5 "$A" check "$w/alias.safetensors"

# Workers: a 1 GiB reply on every other request of each process (rejected
# from its length prefix), a crash on every third (each counted:
# crash_retried). Exit 1: worker failures.
fake="ATTNVET_FAKE_WORKER=gib-every@2 exec $w/worker.test"
row "1 GiB worker replies (20 cases)" 1 60 "$A" fuzz --target "exec:$fake" --worker-profile bf16 --family window --cases 20 --seed 1 --progress 0 --out "$w/gib" --json "$w/gib.json"
fake="ATTNVET_FAKE_WORKER=every@3 exec $w/worker.test"
row "crash every 3rd request (30 cases)" 1 60 "$A" fuzz --target "exec:$fake" --worker-profile bf16 --cases 30 --seed 1 --progress 0 --out "$w/every" --json "$w/every.json"
if [ -s "$w/every.json" ]; then
	/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("    crash every 3rd: passed=%s worker_failure_kinds=%s" % (r["passed"], r.get("worker_failure_kinds")))' "$w/every.json" >&2
fi

# SIGKILL after 10 s, then --resume; the failures equal an uninterrupted run's.
camp=(--target mutant:pr301-n1-poison --cases 4000 --seed 11 --save 3 --shrink-budget 50 --progress 0)
"$A" fuzz "${camp[@]}" --out "$w/whole" --json "$w/whole.json" >/dev/null 2>&1
"$A" fuzz "${camp[@]}" --out "$w/killed" >/dev/null 2>&1 &
pid=$!
sleep 10
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
ondisk=$(find "$w/killed" -name '*.json' ! -name 'journal*' | wc -l)
journal=$(wc -l <"$w/killed/journal.jsonl" 2>/dev/null || echo 0)
echo "    SIGKILL after 10 s: $ondisk case files on disk, $journal journal records" >&2
row "--resume after SIGKILL at 10 s" 1 120 "$A" fuzz --resume "$w/killed" --json "$w/resumed.json"
if [ -s "$w/resumed.json" ] && [ -s "$w/whole.json" ]; then
	/usr/bin/python3 - "$w/whole.json" "$w/resumed.json" >&2 <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
key = lambda r: sorted((f["target"], f["case"]) for f in r.get("failures", []))
same = key(a) == key(b) and a["failed_checks"] == b["failed_checks"] and a["cases"] == b["cases"]
print("    resumed vs uninterrupted: cases %d/%d, failed checks %d/%d, failure list %s" %
      (b["cases"], a["cases"], b["failed_checks"], a["failed_checks"], "identical" if same else "DIFFERENT"))
sys.exit(0 if same else 1)
EOF
	[ $? -eq 0 ] || status=1
fi

# A gapped merge: shard 1/3 absent, shard 2/3 stopped by SIGTERM.
for i in 0 2; do
	"$A" fuzz --cases 9000 --seed 5 --shard "$i/3" --progress 0 --out "$w/s$i" --json "$w/s$i.json" >/dev/null 2>&1 &
	p=$!
	if [ "$i" = 2 ]; then sleep 2; kill -TERM "$p"; fi
	wait "$p"
done
row "merge with a gap (1/3 absent, 2/3 SIGTERM)" 2 10 "$A" report --merge "$w/s0.json" "$w/s2.json" --json "$w/merged.json"
grep -h -m3 'GAP' "$w/row.out" | sed 's/^/    /' >&2

# Found while fuzzing the merge path (this change): a result claiming a
# huge shard count, and an edge class of 500 letters.
/usr/bin/python3 - "$w/s0.json" "$w" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["runs"][0]["shard"], r["runs"][0]["case_budget"] = "0/2000000000", 0
json.dump(r, open(sys.argv[2] + "/shards.json", "w"))
r = json.load(open(sys.argv[1]))
r["edge_classes"] = {"a" * 500: 1, "e\x1b[2J": 1}
json.dump(r, open(sys.argv[2] + "/classes.json", "w"))
EOF
row "merge: shard 0/2000000000 (1.3 KB)" 2 5 "$A" report --merge "$w/shards.json" --json "$w/m1.json"
row "merge: 500-letter and ESC edge classes" 2 5 "$A" report --merge "$w/classes.json" --json "$w/m2.json"
exit $status
