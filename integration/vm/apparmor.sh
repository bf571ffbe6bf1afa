# Sourced by the VM's AppArmor tests (tests-apparmor.sh, tests-engines.sh).
# deny_profile NAME RULE: an AppArmor profile NAME that allows everything but RULE (e.g.
# `deny /secret rwklx,`). Paths are those the container sees (AppArmor resolves them from its
# mount namespace's root); attach_disconnected because the container's root is not reachable
# from the guest's.
deny_profile() {
  cat <<P
abi <abi/3.0>,
profile $1 flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  mount, umount, remount, pivot_root,
  signal, ptrace, unix,
  $2
}
P
}
