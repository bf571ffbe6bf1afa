#!/usr/bin/env bash
# SELinux labels for real, inside the test VM booted with `security=selinux` and the reference
# policy (Debian's selinux-policy-default) loaded, with testudo-vm.cil added: process.selinuxLabel
# is the context the container's processes run in (init and what it execs, and `exec`), the
# session keyring carries it, linux.mountLabel is the `context=` of the container's tmpfs and
# devpts mounts and the label of its mqueue's root (not on proc or sysfs), and a label the policy
# does not define is a clear `create` error that leaves nothing behind. These run permissive: the
# kernel records the same labels in both modes. One test runs enforcing: testudo-vm.cil's
# container domain is denied a file the guest's own context may read, so the labelled container
# (and a process exec'd into it) cannot read it and the unlabelled one can.
# Run on the host, it installs the policy and builds the module into a copy of it (for the guest,
# which runs the host's /) and runs itself in the VM. Prints `ok - …` / `not ok - …` and a final
# `N passed, N failed`; exits non-zero on any failure. Nothing here skips.
set -uo pipefail
. "$(dirname "$0")/harness.sh"
host_prereqs

# The reference policy with testudo-vm.cil, built on the host (semodule under an alternate root:
# the host's own policy is untouched; ~10 s) and cached by the hash of both.
host_policy() {
  local cache=${TESTUDO_VM_CACHE:-/var/cache/testudo-vm} module key out alt
  module=$(dirname "$0")/testudo-vm.cil
  key=$(cat /etc/selinux/default/policy/policy.* "$module" | sha256sum | cut -c1-16)
  out=$cache/selinux-policy-$key
  if [ ! -s "$out" ]; then
    alt=$(mktemp -d) && mkdir -p "$alt/etc" "$alt/var/lib" &&
      cp -a /etc/selinux "$alt/etc/" && cp -a /var/lib/selinux "$alt/var/lib/" &&
      semodule -n -p "$alt" -i "$module" 2>"$alt/err" &&
      mkdir -p "$cache" && cp "$alt"/etc/selinux/default/policy/policy.* "$out.tmp" && mv "$out.tmp" "$out" ||
      { echo "not ok - build the test policy with $module: $(cat "$alt/err" 2>/dev/null)"; rm -rf "$alt"; exit 1; }
    rm -rf "$alt"
  fi
  export TESTUDO_SELINUX_POLICY=$out
}
[ -n "${TESTUDO_IN_VM:-}" ] || host_policy
export TESTUDO_VM_LSM=selinux
in_vm "$0" "$@"

# Types of the reference policy's virt module (it has no container module): a process domain and
# a file type, with distinct MCS categories per container as container engines pick them.
PL=system_u:system_r:svirt_t:s0:c1,c2
PL2=system_u:system_r:svirt_t:s0:c3,c4
ML=system_u:object_r:svirt_image_t:s0:c1,c2
# testudo-vm.cil's container domain, for the enforcing test.
ENF=system_u:system_r:testudo_vm_t:s0

probe() {
  cat <<'S'
echo "init: $(cat /proc/1/attr/current)"
echo "self: $(cat /proc/self/attr/current)"
S
}

t_process_label() {
  local id=labelled
  probe | bundle $id selinux=$PL || return 1
  local out; out=$(run_out $id)
  # attr/current ends in a NUL, which bash drops.
  has_line "init: $PL" "the container's init" "$out" || return 1
  # `cat`, exec'd by the shell, stays in the domain.
  has_line "self: $PL" "a process it exec'd" "$out" || return 1
}

t_no_label() {
  local id=unlabelled
  probe | bundle $id || return 1
  local out; out=$(run_out $id)
  has_line "init: $GUEST" "without selinuxLabel the init should stay in $GUEST" "$out" || return 1
}

t_exec() {
  local id=execlabel out
  bundle $id selinux=$PL <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  out=$(tu exec $id cat /proc/self/attr/current 2>&1 | tr -d '\0')
  [ "$out" = "$PL" ] || { cleanup $id; fail "exec without --process-label: $out"; return 1; }
  out=$(tu exec --process-label $PL2 $id cat /proc/self/attr/current 2>&1 | tr -d '\0')
  [ "$out" = "$PL2" ] || { cleanup $id; fail "exec --process-label $PL2: $out"; return 1; }
  out=$(tu exec --process-label system_u:system_r:testudo_no_such_t:s0 $id echo ran 2>&1)
  cleanup $id
  ! grep -qx ran <<<"$out" || { fail "exec with an undefined label ran: $out"; return 1; }
  grep -q 'exec: process.selinuxLabel .*system_u:system_r:testudo_no_such_t:s0.*: not a valid context in the loaded SELinux policy' <<<"$out" ||
    { fail "exec error: $out"; return 1; }
}

# The key's label as SELinux stored it: keyctl security, from the guest, on the container's
# session keyring (named _ses.ID; its user, root, may view it).
keyring_label() {
  local hex; hex=$(awk -v n="_ses.$1:" '$9 == n { print $1 }' /proc/keys) || return 1
  [ -n "$hex" ] || { fail "no _ses.$1 keyring in /proc/keys: $(cat /proc/keys)"; return 1; }
  keyctl security $((16#$hex))
}

t_keyring() {
  local id=keylabel got
  bundle $id selinux=$PL <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  got=$(keyring_label $id); cleanup $id
  [ "$got" = "$PL" ] || { fail "session keyring of a labelled container: $got"; return 1; }
  id=keyplain
  bundle $id <<'S' || return 1
exec sleep 100
S
  start $id || return 1
  got=$(keyring_label $id); cleanup $id
  [ "$got" = "$GUEST" ] || { fail "session keyring without selinuxLabel: $got"; return 1; }
}

t_mount_label() {
  local id=mountlabel
  bundle $id mountlabel=$ML <<'S' || return 1
cat /proc/self/mountinfo
exec sleep 100
S
  start $id || return 1
  wait_for 20 'grep -q mqueue "$work/$id.out"' || { cleanup $id; fail "no mountinfo from the container: $(cat "$work/$id.out")"; return 1; }
  local out; out=$(cat "$work/$id.out")
  # The mqueue superblock is made with the container's IPC namespace, before any mount: not a
  # context= but the label of its root, read from the guest through the init's root.
  local pid mq; pid=$(init_pid $id); mq=$(stat -c %C /proc/$pid/root/dev/mqueue 2>&1)
  cleanup $id
  # Options with a comma (the MCS categories) are shown in quotes.
  local m line
  for m in /dev /dev/pts /dev/shm; do
    line=$(awk -v m=$m '$5 == m' <<<"$out")
    [ -n "$line" ] || { fail "no $m mount: $out"; return 1; }
    grep -qF "context=\"$ML\"" <<<"$line" || { fail "$m without context=$ML: $line"; return 1; }
  done
  [ "$mq" = "$ML" ] || { fail "the root of /dev/mqueue is labelled $mq"; return 1; }
  for m in /proc /sys; do
    line=$(awk -v m=$m '$5 == m' <<<"$out")
    [ -n "$line" ] || { fail "no $m mount: $out"; return 1; }
    ! grep -q 'context=' <<<"$line" || { fail "$m has a context=, which its filesystem does not take: $line"; return 1; }
  done
}

# An undefined label is refused at create, naming the field, and no container is left.
t_undefined() {
  local field opt id err code st st_code
  for field in process.selinuxLabel:selinux=system_u:system_r:testudo_no_such_t:s0 \
               linux.mountLabel:mountlabel=system_u:object_r:testudo_no_such_t:s0; do
    opt=${field#*:}; field=${field%%:*}; id=undef${opt%%=*}
    probe | bundle $id "$opt" || return 1
    # To a file: a create that wrongly succeeds leaves an init holding its stdio open.
    tu create --bundle "$work/$id" $id >/dev/null 2>"$work/$id.err"; code=$?; err=$(cat "$work/$id.err")
    st=$(tu state $id 2>&1); st_code=$?
    cleanup $id
    [ $code -ne 0 ] || { fail "create succeeded with $field ${opt#*=}"; return 1; }
    grep -q "create: $field .*${opt#*=}.*: not a valid context in the loaded SELinux policy" <<<"$err" ||
      { fail "create error for $field: $err"; return 1; }
    [ $st_code -ne 0 ] || { fail "a failed create left a container: $st"; return 1; }
  done
}

# Enforcing, for this one test: a container labelled testudo_vm_t cannot read a file of
# testudo_vm_secret_t (testudo-vm.cil), the same container without the label can, and a process
# exec'd into the labelled container is denied too.
t_enforcing() {
  local id=enforced out
  echo secret > "$work/rootfs/secret" && echo public > "$work/rootfs/public" &&
    chcon -t testudo_vm_secret_t "$work/rootfs/secret" || { fail "label /secret"; return 1; }
  local probe='cat /secret 2>&1; cat /public; cat /proc/self/attr/current; echo'
  echo "$probe; exec sleep 100" | bundle $id selinux=$ENF || return 1
  echo "$probe" | bundle unenforced || return 1
  # The container's output goes to /run (a tmpfs, tmpfs_t): the guest's context may not create
  # files in the unlabelled $work while enforcing.
  local o=/run/testudo-vm-$id.out
  setenforce 1 || { fail "setenforce 1"; return 1; }
  tu create --bundle "$work/$id" $id > "$o" 2>&1 && tu start $id && wait_for 20 'grep -q testudo_vm_t "$o"'
  local plain execd
  plain=$(run_out unenforced | tr -d '\0')
  execd=$(tu exec $id cat /secret 2>&1)
  setenforce 0
  out=$(tr -d '\0' < "$o"); rm -f "$o"; cleanup $id
  grep -qx "cat: can't open '/secret': Permission denied" <<<"$out" && grep -qx public <<<"$out" && grep -qx "$ENF" <<<"$out" ||
    { fail "the labelled container: $out $(dmesg | grep avc: | grep -v permissive=1 | tail -n 4)"; return 1; }
  [ "$plain" = "$(printf 'secret\npublic\n%s' "$GUEST")" ] || { fail "the container without the label: $plain"; return 1; }
  grep -q 'Permission denied' <<<"$execd" || { fail "exec into the labelled container read /secret: $execd"; return 1; }
}

# --- run ---------------------------------------------------------------------------------------
grep -qw selinuxfs /proc/filesystems || { echo "not ok - the VM's kernel has no SELinux (security=selinux)"; exit 1; }
mountpoint -q /sys/fs/selinux || mount -t selinuxfs selinuxfs /sys/fs/selinux ||
  { echo "not ok - mount selinuxfs"; exit 1; }
# One write: the kernel takes a policy whole (cat's 128 KiB writes are EINVAL).
dd if="${TESTUDO_SELINUX_POLICY:?}" of=/sys/fs/selinux/load bs=16M status=none ||
  { echo "not ok - load $TESTUDO_SELINUX_POLICY"; exit 1; }
[ "$(cat /sys/fs/selinux/enforce)" = 0 ] || { echo "not ok - SELinux is enforcing; these tests need permissive"; exit 1; }
# The guest's own context (its processes started before the policy was loaded).
GUEST=$(tr -d '\0' < /proc/self/attr/current)
[ -n "$GUEST" ] || { echo "not ok - no SELinux context for the guest's shell"; exit 1; }
setup_work selinux
run_test "selinuxLabel: the container's init and what it execs run in that context" t_process_label
run_test "without selinuxLabel the container keeps its creator's context" t_no_label
run_test "exec runs in the container's label; --process-label sets another; an undefined one is refused" t_exec
run_test "the session keyring carries selinuxLabel" t_keyring
run_test "mountLabel is the context= of tmpfs and devpts mounts and the label of mqueue's root, not on proc or sysfs" t_mount_label
run_test "an undefined selinuxLabel or mountLabel is a create error naming it, leaving nothing" t_undefined
run_test "enforcing: the label's policy denies the labelled container (and exec into it) what it lets the unlabelled one read" t_enforcing
finish
