#!/usr/bin/env bash
# Offline Vercel check: build the deployment with the pinned Vercel CLI (no login, no
# token, no call to Vercel's API), then call the generated Python function the way the
# platform does and expect `GET /health` -> 200 JSON with a "status" key.
#
#   bash scripts/vercel_check.sh [PROJECT_DIR]     (default: .)
#
# Needs: node >= 18 with npx; Python 3.12 (pyenv 3.12.x is picked up by itself, or set
# VERCEL_CHECK_PYTHON=/path/to/python3.12); the npm registry and PyPI (the build installs
# requirements.txt from PyPI with uv).
# Optional: VERCEL_CHECK_KEEP=1 keeps the temp dir; VERCEL_CHECK_CACHE moves the cache
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/vapi-bridge-vercel-check); VERCEL_CHECK_PASSENV
# names variables (space-separated) to pass to the function; it otherwise gets a clean env.
set -euo pipefail

# 61 and newer don't install from this npm registry (a dependency version is missing);
# 58.10.0 is the tested pin. Its @vercel/python (6.56.2) wants uv >= 0.9.25 and pins 0.10.11.
VERCEL_CLI_VERSION=58.10.0
UV_VERSION=0.10.11
BUILD_TIMEOUT=${VERCEL_CHECK_BUILD_TIMEOUT:-900}

say() { printf 'vercel-check: %s\n' "$*"; }
die() { printf 'vercel-check: FAIL: %s\n' "$*" >&2; exit 1; }

PROJECT_DIR=$(cd "${1:-.}" && pwd) || die "no such project dir: ${1:-.}"
[ -f "$PROJECT_DIR/vercel.json" ] || die "$PROJECT_DIR has no vercel.json"
CACHE=${VERCEL_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vapi-bridge-vercel-check}
mkdir -p "$CACHE"

command -v npx >/dev/null || die "npx not found (install Node.js >= 18)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' \
  || die "Node.js >= 18 needed, found $(node --version)"

# --- Python 3.12: the builder (via uv) and the function runtime are python3.12 --------
find_py312() { python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || true; }
PY312=${VERCEL_CHECK_PYTHON:-$(find_py312)}
if [ -z "$PY312" ] && command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -n1 || true)
  if [ -n "$v" ]; then export PYENV_VERSION=$v; PY312=$(find_py312); fi
fi
[ -n "$PY312" ] || die "Python 3.12 not found: install it (pyenv install 3.12) or set VERCEL_CHECK_PYTHON"
# Keep pyenv's shims (which uv also probes) on that same 3.12 inside the temp dir.
case "$PY312" in
  */.pyenv/versions/*/bin/*) v=${PY312%/bin/*}; export PYENV_VERSION=${v##*/} ;;
esac
"$PY312" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || die "$PY312 is not Python 3.12"

# --- uv: @vercel/python requires it on PATH outside Vercel's build image -------------
UV_HOME=$CACHE/uv-$UV_VERSION
if ! "$UV_HOME/bin/uv" --version 2>/dev/null | grep -qF "uv $UV_VERSION"; then
  say "installing uv $UV_VERSION from PyPI into $UV_HOME"
  rm -rf "$UV_HOME"
  "$PY312" -m venv "$UV_HOME" >/dev/null
  "$UV_HOME/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
    || die "could not install uv==$UV_VERSION from PyPI"
fi

# --- temp copy of the deployable files ----------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vercel-check.XXXXXX")
cleanup() {
  if [ "${VERCEL_CHECK_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
SRC=$WORK/project
mkdir -p "$SRC" "$WORK/bin" "$WORK/ignore" "$WORK/tmp"  # tmp: uv leaves lock files there
ln -s "$PY312" "$WORK/bin/python3.12"
ln -s "$UV_HOME/bin/uv" "$WORK/bin/uv"

# Files a deploy would upload: git's view (tracked + untracked, not .gitignored), minus
# what .vercelignore drops (same gitignore syntax; matched with git check-ignore in an
# empty scratch repo so only .vercelignore's rules apply). Vercel's own default
# ignores (.git, .vercel, .venv, __pycache__, node_modules) are dropped too.
if git -C "$PROJECT_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$PROJECT_DIR" ls-files -z -co --exclude-standard >"$WORK/files0"
else
  (cd "$PROJECT_DIR" && find . -type f -print0 | sed -z 's|^\./||') >"$WORK/files0"
fi
git init -q "$WORK/ignore"
printf '.git\n.vercel\n.venv\nvenv\nnode_modules\n__pycache__\n' >"$WORK/ignore/.gitignore"
if [ -f "$PROJECT_DIR/.vercelignore" ]; then
  cat "$PROJECT_DIR/.vercelignore" >>"$WORK/ignore/.gitignore"
else
  say "no .vercelignore: everything git sees is uploaded"
fi
(cd "$PROJECT_DIR" && while IFS= read -r -d '' f; do
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done <"$WORK/files0") >"$WORK/present0"
rc=0  # check-ignore: 0 = some ignored, 1 = none ignored, 128 = error
git -C "$WORK/ignore" check-ignore --no-index -z --stdin <"$WORK/present0" >"$WORK/ignored0" || rc=$?
[ "$rc" -le 1 ] || die "git check-ignore failed on .vercelignore"
"$PY312" - "$WORK/present0" "$WORK/ignored0" "$WORK/keep0" <<'EOF'
import sys
present = open(sys.argv[1], "rb").read().split(b"\0")
ignored = set(open(sys.argv[2], "rb").read().split(b"\0"))
open(sys.argv[3], "wb").write(b"".join(p + b"\0" for p in present if p and p not in ignored))
EOF
tar -C "$PROJECT_DIR" --null -T "$WORK/keep0" -cf - | tar -C "$SRC" -xf -
say "copied $(tr -cd '\0' <"$WORK/keep0" | wc -c) files ($(tr -cd '\0' <"$WORK/ignored0" | wc -c) dropped by .vercelignore) to $SRC"

# A linked project with settings: `vercel build` then neither prompts nor pulls settings
# from the API (it only goes online when project.json has no "settings" object).
mkdir -p "$SRC/.vercel"
cat >"$SRC/.vercel/project.json" <<'EOF'
{"projectId":"prj_offlinecheck","orgId":"team_offlinecheck","settings":{"framework":null}}
EOF

# A throwaway global config: never a developer's real login, and a stub userId so the CLI
# doesn't spend ~5 s retrying GET api.vercel.com/v2/user (for telemetry) before exiting.
mkdir -p "$WORK/vercel-global"
echo '{"userId":"user_offlinecheck"}' >"$WORK/vercel-global/auth.json"
echo '{"telemetry":{"enabled":false}}' >"$WORK/vercel-global/config.json"

# @vercel/python points UV_CACHE_DIR at .vercel/python/cache/uv: keep it across runs.
mkdir -p "$CACHE/uv-cache" "$SRC/.vercel/python/cache"
ln -s "$CACHE/uv-cache" "$SRC/.vercel/python/cache/uv"

# --- build ---------------------------------------------------------------------------
say "vercel@$VERCEL_CLI_VERSION build (python: $PY312, uv: $UV_VERSION)"
t0=$(date +%s)
if ! (cd "$SRC" && env -u VERCEL_TOKEN -u VERCEL_ORG_ID -u VERCEL_PROJECT_ID \
  -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV \
  PATH="$WORK/bin:$PATH" TMPDIR="$WORK/tmp" \
  npm_config_cache="$CACHE/npm" npm_config_prefer_offline=true \
  npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
  VERCEL_TELEMETRY_DISABLED=1 NO_UPDATE_NOTIFIER=1 \
  timeout "$BUILD_TIMEOUT" npx --yes "vercel@$VERCEL_CLI_VERSION" build --yes \
    --global-config "$WORK/vercel-global") \
  >"$WORK/build.log" 2>&1; then
  sed 's/^/  | /' "$WORK/build.log" >&2
  die "vercel build failed (log above)"
fi
sed 's/^/  | /' "$WORK/build.log"
say "build took $(( $(date +%s) - t0 ))s"

# --- routes, bundle contents, then invoke the function --------------------------------
"$PY312" - "$SRC" "$WORK/fn" <<'PYEOF'
"""Check .vercel/output, assemble the function like a deployment does, and call it."""
import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

src, fn_root = Path(sys.argv[1]), Path(sys.argv[2])
out = src / ".vercel" / "output"
PY = sys.executable


def say(msg):
    print(f"vercel-check: {msg}", flush=True)


def die(msg):
    print(f"vercel-check: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# 1. Exactly one function.
vc_configs = sorted((out / "functions").glob("**/*.func/.vc-config.json"))
if len(vc_configs) != 1:
    die(f"expected 1 function in {out / 'functions'}, found {[str(p) for p in vc_configs]}"
        " (vercel.json must make @vercel/python build wsgi.py: `builds`, or"
        " `\"framework\": \"flask\"`; rewrites alone build nothing)")
func_dir = vc_configs[0].parent
func_name = func_dir.relative_to(out / "functions").as_posix()[: -len(".func")]
cfg = json.loads(vc_configs[0].read_text())
say(f"function {func_name!r}: runtime={cfg.get('runtime')} handler={cfg.get('handler')} "
    f"streaming={cfg.get('supportsResponseStreaming')} env={cfg.get('environment')}")
if cfg.get("runtime") != "python3.12":
    die(f"runtime is {cfg.get('runtime')!r}, expected 'python3.12'")


# 2. Every path is routed to it (config.json, Build Output API v3; phases after
#    `handle: error`/`hit` only run on errors / filesystem hits: skip them).
routes = json.loads((out / "config.json").read_text()).get("routes", [])


def route(path):
    phase = None
    for r in routes:
        if "handle" in r:
            phase = r["handle"]
            continue
        if phase in ("error", "hit") or "src" not in r:
            continue
        if re.match(r["src"], path):
            if r.get("dest"):
                return r["dest"].split("?")[0].lstrip("/")
            if r.get("status") or not r.get("continue"):
                return f"status {r.get('status')}"
    return None


for p in ("/health", "/", "/vapi/webhook", "/a/b/c.json"):
    got = route(p)
    if got != func_name:
        die(f"{p} routes to {got!r}, not to the function {func_name!r}; routes={routes}")
say(f"routes: /health, /, /vapi/webhook, /a/b/c.json -> {func_name}")

# 3. Bundle = filePathMap (bundle path -> source path, relative to the project) + the
#    files physically in the .func dir. Dev-only files must not be in it.
fpm = cfg.get("filePathMap", {})
app_files = sorted(k for k in fpm if not k.startswith("_vendor/"))
say(f"bundle: {len(fpm)} mapped files, app files: {app_files}")
dev = [k for k in app_files
       if re.match(r"(tests|bench|scripts|\.ci|\.venv|\.pytest_cache|\.ruff_cache)/|"
                   r"(.*/)?tests/|requirements-dev\.txt$|Makefile$", k)]
if dev:
    die(f"dev-only files in the function bundle: {dev}")
if fn_root.exists():
    shutil.rmtree(fn_root)
size = 0
for dst, s in fpm.items():
    s = Path(s) if os.path.isabs(s) else src / s
    d = fn_root / dst
    d.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(s, d)
    size += d.stat().st_size
shutil.copytree(func_dir, fn_root, symlinks=True, dirs_exist_ok=True)
say(f"assembled {fn_root} ({size / 1e6:.1f} MB unzipped)")

module, _, attr = cfg["handler"].rpartition(".")
if not (fn_root / f"{module}.py").is_file():
    die(f"handler module {module}.py not in the bundle")

# The function gets a clean env (nothing from this shell's Python setup) plus what
# .vc-config.json sets; cwd is the function root, like /var/task on the platform.
env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
env.update({"LANG": "C.UTF-8", "VERCEL": "1", "VERCEL_ENV": "preview"})
for name in os.environ.get("VERCEL_CHECK_PASSENV", "").split():
    if name in os.environ:
        env[name] = os.environ[name]
env.update(cfg.get("environment", {}))
# -S: no site-packages of the local interpreter, so deps can only come from the bundle.
PYCMD = [PY, "-S"]


def check_health(status, body, how):
    if status != 200:
        die(f"{how}: GET /health -> {status}: {body[:500]!r}")
    try:
        doc = json.loads(body)
    except ValueError:
        die(f"{how}: GET /health -> 200 but not JSON: {body[:500]!r}")
    if not isinstance(doc, dict) or "status" not in doc:
        die(f"{how}: GET /health -> 200 JSON without a 'status' key: {doc!r}")
    say(f"{how}: GET /health -> 200 {json.dumps(doc)}")


# 4a. Production path (supportsResponseStreaming): the runtime sets VERCEL_IPC_PATH, a
#     unix socket; importing the handler module starts an HTTP server on 127.0.0.1:<port>,
#     announces {"type":"server-started","payload":{"httpPort":...}} (NUL-delimited JSON)
#     and serves requests carrying x-vercel-internal-* ids, answering each with an "end".
ipc_path = str(fn_root.parent / "ipc.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(ipc_path)
srv.listen(1)
srv.settimeout(0.2)
proc = subprocess.Popen(PYCMD + ["-c", f"import {module}"], cwd=fn_root,
                        env={**env, "VERCEL_IPC_PATH": ipc_path},
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
buf, seen = b"", []


def next_msg(conn, deadline):
    global buf
    while b"\0" not in buf:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError("IPC socket closed")
        buf += chunk
    raw, _, buf = buf.partition(b"\0")
    seen.append(json.loads(raw))
    return seen[-1]


def ipc_fail(reason):
    """Die with what the function said: its exit, output and IPC log/error messages."""
    try:
        out = proc.communicate(timeout=5)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
    said = []
    for m in seen:
        pl = m.get("payload", {})
        if m.get("type") == "log":
            said.append(base64.b64decode(pl.get("message", "")).decode(errors="replace"))
        elif m.get("type") == "unrecoverable-error":
            said.append(f"[unrecoverable-error] {pl.get('message')}")
    text = "".join(said) + out.decode(errors="replace")
    die(f"ipc: {reason} (exit {proc.returncode}); the function said:\n{text.rstrip()}")


try:
    conn, deadline = None, time.monotonic() + 60
    while conn is None:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            if proc.poll() is not None or time.monotonic() > deadline:
                ipc_fail("handler exited or never connected to VERCEL_IPC_PATH")
    port, deadline = None, time.monotonic() + 60
    while port is None:
        try:
            msg = next_msg(conn, deadline)
        except (EOFError, socket.timeout) as exc:
            ipc_fail(f"no server-started message ({exc})")
        if msg.get("type") == "unrecoverable-error":
            ipc_fail("handler failed to start")
        if msg.get("type") == "server-started":
            port = msg["payload"]["httpPort"]
            say(f"ipc: server-started on 127.0.0.1:{port} "
                f"(initDuration {msg['payload'].get('initDuration')} ms)")
    hc = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hc.request("GET", "/health", headers={
        "host": "vapi-bridge-offlinecheck.vercel.app", "x-forwarded-proto": "https",
        "x-vercel-internal-invocation-id": "1", "x-vercel-internal-request-id": "7"})
    res = hc.getresponse()
    body = res.read().decode(errors="replace")
    n = len(seen)
    while not any(m.get("type") == "end" for m in seen[n:]):
        try:
            msg = next_msg(conn, time.monotonic() + 10)
        except (EOFError, socket.timeout):
            ipc_fail("no 'end' message after the response")
        if msg.get("type") == "end" and msg["payload"]["context"].get("requestId") != 7:
            die(f"ipc: 'end' for the wrong request: {msg}")
    check_health(res.status, body, "ipc (streaming runtime)")
finally:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    srv.close()

# 4b. Lambda-style entry named in .vc-config.json (no VERCEL_IPC_PATH): handler(event,
#     context) with event["body"] = JSON {method, path, headers, body}; returns
#     {statusCode, headers, body}. Also proves flask came from the bundle.
probe = f"""
import json, sys
from {module} import {attr} as h
ev = {{"body": json.dumps({{"method": "GET", "path": "/health", "headers":
      {{"host": "vapi-bridge-offlinecheck.vercel.app", "x-forwarded-proto": "https"}}}})}}
r = h(ev, None)
print("__RESULT__" + json.dumps({{"r": r, "flask": sys.modules["flask"].__file__}}))
"""
p = subprocess.run(PYCMD + ["-c", probe], cwd=fn_root, env=env, capture_output=True,
                   text=True, timeout=120)
line = next((x for x in p.stdout.splitlines() if x.startswith("__RESULT__")), None)
if p.returncode != 0 or line is None:
    die(f"event: {cfg['handler']} failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
res = json.loads(line[len("__RESULT__"):])
if not res["flask"].startswith(str(fn_root) + os.sep):
    die(f"event: flask imported from outside the bundle: {res['flask']}")
r = res["r"]
body = r.get("body") or ""
if r.get("encoding") == "base64":
    body = base64.b64decode(body).decode(errors="replace")
check_health(r.get("statusCode"), body, f"event ({cfg['handler']})")
PYEOF
say "OK"
