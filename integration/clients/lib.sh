# Shared helpers for the client suite; sourced by run.sh.
# Globals set by run.sh: HERE (this folder), RUNTIME (runtime under test), T (scratch state dir,
# removed at exit), OUT (kept: logs, argv summary, timings), WRAP (argv-logging wrapper).

PASS=0 FAIL=0 SKIPPED=0
ENGINE=setup
DAEMON_PIDS=()     # every daemon this run started, stopped by pid at exit
DUMP_FN=:          # the current engine's state dump, called when a daemon call times out

ok() { PASS=$((PASS + 1)); echo "ok - $ENGINE: $1"; }
notok() {
  FAIL=$((FAIL + 1)); echo "not ok - $ENGINE: $1"; shift
  local line
  for line in "$@"; do printf '%s\n' "$line" | head -c 2000 | sed 's/^/#   /'; echo; done | sed '/^$/d'
}
skip() {
  if [ "${TESTUDO_IN_VM:-}" = 1 ]; then
    notok "$1" "SKIP is a failure inside the VM (TESTUDO_IN_VM=1): $2"
  else
    SKIPPED=$((SKIPPED + 1)); echo "SKIP - $ENGINE: $1 : $2"
  fi
}
note() { echo "# $ENGINE: $*"; }

# is NAME EXPECTED ACTUAL [CONTEXT...]
is() {
  local name=$1 want=$2 got=$3; shift 3
  if [ "$got" = "$want" ]; then ok "$name"; else notok "$name" "expected: $want" "got: $got" "$@"; fi
}
# The matchers read all of ACTUAL (grep without -q): with pipefail, grep -q leaving at the first
# match made printf's next write a SIGPIPE, and a match that was there a failure (seen under load).
# like NAME ERE ACTUAL [CONTEXT...]
like() {
  local name=$1 re=$2 got=$3; shift 3
  if printf '%s' "$got" | grep -E -- "$re" >/dev/null; then ok "$name"
  else notok "$name" "expected to match: $re" "got: $got" "$@"; fi
}
# unlike NAME ERE ACTUAL
unlike() {
  if printf '%s' "$3" | grep -E -- "$2" >/dev/null; then notok "$1" "must not match: $2" "got: $3"; else ok "$1"; fi
}
# contains NAME NEEDLE HAYSTACK: fixed-string containment
contains() {
  if [ -n "$2" ] && printf '%s' "$3" | grep -F -- "$2" >/dev/null; then ok "$1"
  else notok "$1" "expected to contain: $2" "got: $3"; fi
}

# tmo SECONDS CMD...: run a daemon call with a bound. On expiry, dump the engine's state to the
# suite's own stdout (fd 3, even from inside $(...)) and to $OUT/timeouts.txt, record the call
# (report_timeouts turns each into a failure: a subshell's counters would be lost) and return 124.
# timeout(1) exits 137 when it had to KILL, as does a command SIGKILLed on its own (an OOM kill):
# only the time taken tells them apart, and a timed-out call must not pass for the latter.
tmo() {
  local secs=$1; shift
  local t0=${EPOCHREALTIME/./}
  timeout -k 5 "$secs" "$@"
  local rc=$?
  if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ $(( ${EPOCHREALTIME/./} - t0 )) -ge $((secs * 1000000)) ]; }; then
    rc=124
    echo "${secs}s: $*" >> "$T/timeouts.list"
    {
      echo "TIMEOUT after ${secs}s: $*"
      dump_state
    } 2>&1 | tee -a "$OUT/timeouts.txt" | sed 's/^/# /' >&3
  fi
  return $rc
}

report_timeouts() {
  local line
  [ -s "$T/timeouts.list" ] || return 0
  while IFS= read -r line; do notok "a daemon call timed out after $line"; done < "$T/timeouts.list"
  : > "$T/timeouts.list"
}

dump_state() {
  echo "== processes under $T"
  ps -eo pid,ppid,stat,etimes,wchan:24,args --forest | grep -F -e "$T" -e "$(basename "$RUNTIME")" | grep -v -e grep -e run.sh | cut -c1-300
  echo "== $ENGINE state"
  "$DUMP_FN" 2>&1 | tail -n 60 | cut -c1-400
}

# Wait until CMD succeeds, at most SECONDS (fractional polling).
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  while [ $SECONDS -le $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# The argv-logging wrapper: named like the runtime (podman keys features off the basename),
# records each call with the caller's name, keeps config.json of each created container, and
# execs the runtime (same pid, so nothing else changes).
make_wrapper() {
  mkdir -p "$T/bin" "$T/specs"
  WRAP=$T/bin/$(basename "$RUNTIME")
  ARGV_LOG=$T/argv.log
  : > "$ARGV_LOG"
  cat > "$WRAP" <<EOF
#!/bin/sh
{ printf '%s' "\$(cat /proc/\$PPID/comm 2>/dev/null):"; for a in "\$@"; do printf ' %s' "\$a"; done; echo; } >> '$ARGV_LOG'
bundle= prev= create= last=
for a in "\$@"; do
  case \$prev in --bundle|-b) bundle=\$a ;; esac
  [ "\$a" = create ] && create=1
  prev=\$a last=\$a
done
if [ -n "\$create" ] && [ -n "\$bundle" ] && [ -f "\$bundle/config.json" ]; then
  cp "\$bundle/config.json" '$T/specs/'"\$last.json" 2>/dev/null
fi
exec '$RUNTIME' "\$@"
EOF
  chmod 755 "$WRAP"
}

# runtime_saw VERB ID: the runtime under test was called with VERB for container ID.
runtime_saw() { grep -E " $1( .*)? $2\$" "$ARGV_LOG" >/dev/null; }

# Summarise the logged command lines: ids, scratch paths and numbers replaced by placeholders.
argv_summary() {
  sed -E -e "s#$T#<T>#g" -e 's/[0-9a-f]{64}/<id>/g' -e 's/[0-9a-f]{12,}/<id>/g' \
      -e 's#(runc-process|exec-process-|/var/tmp/podman)[0-9]+#\1<n>#g' -e 's#(conmon-term|pty)\.[A-Za-z0-9]+#\1.<x>#g' \
      -e 's#/tmp/pty[0-9]+/#/tmp/pty<n>/#g' -e 's#/ex[0-9]+\.pid#/<exec-id>.pid#g' \
      -e 's#/proc/[0-9]+/#/proc/<pid>/#g' -e 's#([ /])(cr|do|po)-[a-z0-9-]+#\1<id>#g' \
      -e 's#<T>/docker/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/<id>#<bundle>#g' \
      -e 's#<T>/containerd/state/io.containerd.runtime.v2.task/[a-z0-9.]+/<id>#<bundle>#g' "$ARGV_LOG" | sort | uniq -c | sort -k2,2 -k1,1rn
}

# pty_run TIMEOUT INPUT CMD...: run CMD on a real pseudo-terminal (expect); INPUT, if not empty,
# is typed after the shell prompt. Prints the terminal output; returns CMD's exit status.
pty_run() { expect -f "$HERE/pty.exp" "$@"; }

# The host-side view of a container's counter file, through /proc/PID/root.
read_count() { cat "/proc/$1/root/tmp/count" 2>/dev/null || echo none; }

# A long-running container command: a counter, a TERM handler exiting 42, a USR1 marker.
LOOP='trap "echo term > /tmp/term; exit 42" TERM; trap "echo usr1 > /tmp/usr1" USR1; i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'
# One that ignores TERM, to check that stop falls back to SIGKILL.
STUBBORN='trap "" TERM; while :; do sleep 0.1; done'

# The pids controller: a v1 hierarchy or an enabled cgroup2 controller.
pids_controller() {
  [ -f /sys/fs/cgroup/pids/cgroup.procs ] && { echo v1; return; }
  grep -qw pids /sys/fs/cgroup/cgroup.controllers 2>/dev/null && { echo v2; return; }
  echo none
}

# The host cgroup directory of PID for a v1 controller (or the v2 one).
cgroup_dir() {
  local pid=$1 ctrl=$2 line
  line=$(grep -E "^[0-9]+:([^:]*,)?$ctrl(,[^:]*)?:" "/proc/$pid/cgroup" | head -1)
  if [ -n "$line" ]; then echo "/sys/fs/cgroup/$ctrl${line#*:*:}"; return; fi
  line=$(grep -E '^0::' "/proc/$pid/cgroup" | head -1)
  echo "/sys/fs/cgroup${line#0::}"
}

# FROZEN when the kernel has frozen the process's cgroup: the v1 freezer where the runtime put
# it in one (runc on a hybrid host), else cgroup v2's cgroup.events (testudo freezes there).
# (A process the runtime leaves in its parent's v1 freezer cgroup — podman's conmon's — is frozen
# through v2 alone, so both are read.)
freezer_state() {
  local pid=$1 v1 v2 root seen=
  v1=$(grep -E '^[0-9]+:freezer:' "/proc/$pid/cgroup" | cut -d: -f3)
  if [ -n "$v1" ] && [ -e "/sys/fs/cgroup/freezer$v1/freezer.state" ]; then
    seen="v1 $(cat "/sys/fs/cgroup/freezer$v1/freezer.state")"
    [ "$seen" = "v1 FROZEN" ] && { echo FROZEN; return; }
  fi
  v2=$(grep -E '^0::' "/proc/$pid/cgroup" | cut -d: -f3)
  for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ -e "$root$v2/cgroup.events" ]; then
      grep -qx 'frozen 1' "$root$v2/cgroup.events" && { echo FROZEN; return; }
      seen="$seen; v2 $(grep frozen "$root$v2/cgroup.events")"
      break
    fi
  done
  echo "not frozen (${seen:-no freezer cgroup for pid $pid})"
}

# The runtime's own message for a missing command, as it writes it to --log in JSON, the way
# every shim and conmon read it. Engines must pass this text through to the user.
runtime_own_error() {
  local b=$T/own-error id="testudo-clients-own-error-$$"
  mkdir -p "$b/rootfs"
  [ -e "$b/rootfs/bin" ] || cp -a "$T/rootfs/." "$b/rootfs/"
  (cd "$b" && "$RUNTIME" spec >/dev/null 2>&1) || runc_spec_fallback "$b"
  /usr/bin/python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["process"]["args"] = ["/nonexistent"]; d["process"]["terminal"] = False
d.setdefault("linux", {})["cgroupsPath"] = "/testudo-clients-own-error"
json.dump(d, open(p, "w"))
PY
  rm -f "$b/log.json"
  timeout 30 "$RUNTIME" --root "$T/own-root" --log "$b/log.json" --log-format json create --bundle "$b" "$id" \
    </dev/null >/dev/null 2>"$b/stderr"
  timeout 30 "$RUNTIME" --root "$T/own-root" delete -f "$id" >/dev/null 2>&1
  rmdir /sys/fs/cgroup/*/testudo-clients-own-error 2>/dev/null
  /usr/bin/python3 - "$b/log.json" <<'PY'
import json, sys
msg = ""
try:
    for line in open(sys.argv[1]):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("level") in ("error", "fatal") and e.get("msg"):
            msg = e["msg"]
except OSError:
    pass
print(msg)
PY
}

runc_spec_fallback() { /usr/sbin/runc spec --bundle "$1" 2>/dev/null; }

# Stop a daemon we started: TERM, then KILL after 15 s.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 75); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  echo "# pid $pid ignored SIGTERM for 15 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null
}

# At exit: daemons by pid, then shims/conmons and containers left behind that this run made
# (found by their command line naming $T), mounts under $T, our cgroups, and $T itself.
cleanup() {
  local pid
  for pid in "${DAEMON_PIDS[@]}"; do stop_pid "$pid"; done
  for pid in $(pgrep -f -- "$T/" 2>/dev/null); do
    [ "$pid" = $$ ] && continue
    kill -KILL "$pid" 2>/dev/null
  done
  # containers the runtime still knows about, in the roots this run used
  local root id
  for root in $(grep -oE -- '--root [^ ]+' "$ARGV_LOG" 2>/dev/null | awk '{print $2}' | sort -u) ""; do
    for id in $(grep -oE ' create .* [^ ]+$' "$ARGV_LOG" 2>/dev/null | awk '{print $NF}' | sort -u); do
      if [ -n "$root" ]; then timeout 20 "$RUNTIME" --root "$root" delete -f "$id" >/dev/null 2>&1
      else timeout 20 "$RUNTIME" delete -f "$id" >/dev/null 2>&1; fi
    done
  done
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -F -- "$T" | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  for m in /sys/fs/cgroup/*/testudo-clients-$$* /sys/fs/cgroup/*/testudo-clients-own-error; do
    [ -d "$m" ] && find "$m" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [ -n "${KEEP:-}" ]; then
    echo "# kept scratch state in $T"
  elif awk '{print $5}' /proc/self/mountinfo | grep -qF -- "$T"; then
    echo "# mounts remain under $T: not removing it" >&2
  else
    rm -rf --one-file-system "$T"
  fi
}
