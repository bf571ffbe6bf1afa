#!/usr/bin/env bash
# process.apparmorProfile enforced for real, inside the test VM (AppArmor on, securityfs mounted):
# a profile loaded with apparmor_parser that denies reading one file confines the container's
# process (the read fails, the task's attr names the profile), the same container without it reads
# the file, `exec` into a confined container stays confined, and a profile that is not loaded is a
# clear `create` error. Run on the host, it installs apparmor (for apparmor_parser, which the guest
# runs from the host's /) and runs itself in the VM. Prints `ok - …` / `not ok - …` and a final
# `N passed, N failed`; exits non-zero on any failure. Nothing here skips.
set -uo pipefail
. "$(dirname "$0")/harness.sh"
host_prereqs
in_vm "$0" "$@"

PROFILE=testudo-vm-deny-secret

# The container reads /secret and /public (both in its rootfs) and prints its own label.
probe() {
  cat <<'S'
echo "secret: $(cat /secret 2>&1)"
echo "public: $(cat /public 2>&1)"
echo "current: $(cat /proc/self/attr/current 2>&1)"
echo "apparmor/current: $(cat /proc/self/attr/apparmor/current 2>&1)"
S
}

t_confined() {
  local id=confined
  probe | bundle $id apparmor=$PROFILE || return 1
  local out; out=$(run_out $id)
  has_line 'secret: cat: can.t open ./secret.: Permission denied' "read of /secret was not denied" "$out" || return 1
  has_line 'public: public' "read of /public failed" "$out" || return 1
  # `cat` runs under the profile, as the process (sh) that exec'd it.
  has_line "current: $PROFILE (enforce)" "attr/current" "$out" || return 1
  has_line "apparmor/current: $PROFILE (enforce)" "attr/apparmor/current" "$out" || return 1
}

t_unconfined() {
  local id=unconfined
  probe | bundle $id || return 1
  local out; out=$(run_out $id)
  has_line 'secret: secret' "read of /secret without the profile" "$out" || return 1
  has_line 'current: unconfined' "attr/current" "$out" || return 1
}

# exec without --apparmor runs under the container's profile (as runc does); --apparmor names
# another one for that process.
t_exec() {
  local id=execconf
  bundle $id apparmor=$PROFILE <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  local out
  out=$(tu exec $id sh -c 'cat /secret; cat /proc/self/attr/current' 2>&1)
  grep -q 'Permission denied' <<<"$out" && grep -qx "$PROFILE (enforce)" <<<"$out" ||
    { cleanup $id; fail "exec into a confined container: $out"; return 1; }
  cleanup $id
  id=execplain
  bundle $id <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  out=$(tu exec --apparmor $PROFILE $id sh -c 'cat /secret; cat /proc/self/attr/current' 2>&1)
  grep -q 'Permission denied' <<<"$out" && grep -qx "$PROFILE (enforce)" <<<"$out" ||
    { cleanup $id; fail "exec --apparmor: $out"; return 1; }
  out=$(tu exec $id sh -c 'cat /secret; cat /proc/self/attr/current' 2>&1)
  [ "$out" = $'secret\nunconfined' ] || { cleanup $id; fail "plain exec: $out"; return 1; }
  cleanup $id
}

t_not_loaded() {
  local id=notloaded
  probe | bundle $id apparmor=testudo-vm-never-loaded || return 1
  local err code
  # To a file: a create that wrongly succeeds leaves an init holding its stdio open.
  tu create --bundle "$work/$id" $id >/dev/null 2>"$work/$id.err"; code=$?; err=$(cat "$work/$id.err")
  local st; st=$(tu state $id 2>&1); local st_code=$?
  cleanup $id
  [ $code -ne 0 ] || { fail "create succeeded with an unloaded profile"; return 1; }
  grep -q 'create: apparmorProfile .*testudo-vm-never-loaded.* is not loaded' <<<"$err" || { fail "create error: $err"; return 1; }
  [ $st_code -ne 0 ] || { fail "a failed create left a container: $st"; return 1; }
  # exec --apparmor is not checked at create: the kernel's refusal at the transition says it.
  id=execnotloaded
  bundle $id <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  local out; out=$(tu exec --apparmor testudo-vm-never-loaded $id echo ran 2>&1); code=$?
  cleanup $id
  [ $code -ne 0 ] && ! grep -qx ran <<<"$out" || { fail "exec with an unloaded profile ran: $out"; return 1; }
  grep -q 'exec: apparmorProfile .*testudo-vm-never-loaded.* is not loaded' <<<"$out" || { fail "exec error: $out"; return 1; }
}

# --- run ---------------------------------------------------------------------------------------
[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] || { echo "not ok - AppArmor is not enabled in the VM's kernel"; exit 1; }
[ -e /sys/kernel/security/apparmor/profiles ] || { echo "not ok - no securityfs at /sys/kernel/security"; exit 1; }
command -v apparmor_parser >/dev/null || { echo "not ok - no apparmor_parser (the host lacks the apparmor package)"; exit 1; }
setup_work apparmor
echo secret > "$work/rootfs/secret"; echo public > "$work/rootfs/public"
. "$(dirname "$0")/apparmor.sh"
deny_profile "$PROFILE" 'deny /secret rwklx,' > "$work/profile"
apparmor_parser -r -K "$work/profile" || { echo "not ok - apparmor_parser -r $work/profile"; exit 1; }
grep -qx "$PROFILE (enforce)" /sys/kernel/security/apparmor/profiles ||
  { echo "not ok - $PROFILE is not in the loaded profiles: $(cat /sys/kernel/security/apparmor/profiles)"; exit 1; }
run_test "apparmorProfile: the denied read fails, another works, attr/current names the profile" t_confined
run_test "without apparmorProfile the same read works and the process is unconfined" t_unconfined
run_test "exec stays under the container's profile; exec --apparmor sets one" t_exec
run_test "a profile that is not loaded is a create (and exec) error naming it" t_not_loaded
finish
