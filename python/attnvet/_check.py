"""Running the attnvet binary: finding it, `attnvet check`, its verdict."""

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading

_built = {}
_lock = threading.Lock()


class AttnvetError(Exception):
    """attnvet could not judge: bad usage, an unreadable or malformed
    bundle with no verdict at all, an internal error, or no binary."""

    def __init__(self, message, exit=None, command=None):
        super().__init__(message)
        self.exit, self.command = exit, command


def _checkout():
    """The repository root when this package runs from a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(root, "go.mod")) and os.path.isdir(os.path.join(root, "cmd", "attnvet")):
        return root
    return None


def find_binary():
    """The attnvet command as an argument list: $ATTNVET_BIN, else
    attnvet on PATH, else built from this checkout (`go build ./cmd/attnvet`
    once per process, what `go run` would do each time)."""
    env = os.environ.get("ATTNVET_BIN")
    if env:
        return shlex.split(env)
    p = shutil.which("attnvet")
    if p:
        return [p]
    root = _checkout()
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if root is None or go is None:
        raise AttnvetError("no attnvet binary: set ATTNVET_BIN, put attnvet on PATH "
                           "(go install github.com/attnvet/attnvet/cmd/attnvet@latest), or run from a checkout with Go")
    with _lock:
        if root not in _built:
            out = os.path.join(tempfile.mkdtemp(prefix="attnvet-py-"), "attnvet")
            r = subprocess.run([go, "build", "-o", out, "./cmd/attnvet"], cwd=root, capture_output=True, text=True)
            if r.returncode != 0:
                raise AttnvetError(f"go build ./cmd/attnvet in {root} failed:\n{r.stderr.strip()}")
            _built[root] = out
        return [_built[root]]


def _flag(k, v):
    name = "--" + k.replace("_", "-")
    if v is True:
        return [name]
    if isinstance(v, (list, tuple)):
        v = ",".join(map(str, v))
    elif isinstance(v, float):
        v = repr(v)
    return [f"{name}={v}"]


class CheckResult:
    """The verdict of `attnvet check` (its --json, docs/interop.md).

    passed:  every bundle passes (exit 0)
    exit:    0 pass, 1 a verified mismatch, 2 some bundle could not be judged
    bundles: the JSON's bundles (dicts: path, status, error, verdicts, worst, …)
    message: what failed, in attnvet's words, and the replay command
    replay:  the command line that reproduces this verdict
    """

    def __init__(self, exit, report, stdout, stderr, command):
        self.exit, self.report, self.stdout, self.stderr = exit, report, stdout, stderr
        self.command = command
        self.bundles = report.get("bundles") or []

    @property
    def passed(self):
        return self.exit == 0

    def __bool__(self):
        return self.passed

    @property
    def replay(self):
        return " ".join(shlex.quote(a) for a in ["attnvet"] + self.command[1:])

    def failing(self):
        return [b for b in self.bundles if b.get("status") != "pass"]

    @property
    def message(self):
        if self.passed:
            return f"attnvet check: PASS ({len(self.bundles)} bundles)"
        lines = []
        for b in self.failing():
            st = b.get("status")
            if st == "fail":
                bad = [v for v in b.get("verdicts") or [] if v.get("gating") and not v.get("pass")]
                for v in bad:
                    lines.append(f"FAIL {b.get('path')}: {v.get('criterion')}: {v.get('detail') or ''}".rstrip())
            else:
                lines.append(f"{st.upper() if st else 'ERROR'} {b.get('path')}: {b.get('error') or ''}".rstrip())
                for vi in b.get("violations") or []:
                    lines.append(f"  contract violation {vi.get('name')} (token {vi.get('token')}): {vi.get('detail')}")
            for w in b.get("warnings") or []:
                lines.append(f"  warning: {w}")
        if self.stderr.strip():
            lines.append(self.stderr.strip())
        lines.append("attnvet output:")
        lines.append(self.stdout.rstrip())
        lines.append(f"replay: {self.replay}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<CheckResult exit={self.exit} bundles={len(self.bundles)}>"


def check(paths, criterion=None, binary=None, timeout=None, **flags):
    """Runs `attnvet check` on a bundle path or a list of them and returns
    a CheckResult. Keyword flags are passed as --flag-name=value
    (`in_dtype="bf16"` → `--in-dtype=bf16`; True → a bare --flag), the
    metadata overrides of docs/interop.md. Raises AttnvetError when
    attnvet gives no verdict (bad usage, exit 3, no binary)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    cmd = list(binary) if binary else find_binary()
    args = ["check", *paths]
    if criterion:
        args += _flag("criterion", criterion)
    for k, v in flags.items():
        if v is not None and v is not False:
            args += _flag(k, v)
    with tempfile.TemporaryDirectory(prefix="attnvet-check-") as d:
        jpath = os.path.join(d, "check.json")
        try:
            r = subprocess.run(cmd + args + ["--json", jpath], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AttnvetError(f"attnvet check timed out after {timeout} s", command=cmd + args) from e
        rep = None
        if os.path.exists(jpath):
            with open(jpath) as f:
                rep = json.load(f)
    if rep is None or r.returncode not in (0, 1, 2):
        msg = (r.stderr.strip() or r.stdout.strip() or f"attnvet check exited {r.returncode}")
        raise AttnvetError(msg, exit=r.returncode, command=cmd + args)
    return CheckResult(r.returncode, rep, r.stdout, r.stderr, ["attnvet"] + args)
