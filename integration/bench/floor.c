// The kernel's floor for the benchmark's `run`: what any runtime must have the kernel do for the
// shared bundle, with no runtime logic around it. clone3 with the bundle's five namespaces, the
// mounts of runc's default spec (rootfs bind, proc, /dev tmpfs, devpts, /dev/shm, mqueue, sysfs
// read-only), pivot_root and the old root detached, exec /bin/true, wait. Static, so that it pays
// no dynamic loader. Not a runtime: no cgroup, no masked paths, no capabilities, no state.
//   floor ROOTFS
#define _GNU_SOURCE
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what) {
  perror(what);
  return 1;
}

static int container(const char *root) {
  const unsigned long nosuid = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) return fail("make / slave");
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) return fail("bind rootfs");
  if (chdir(root)) return fail("chdir rootfs");
  if (mount("proc", "proc", "proc", nosuid, NULL)) return fail("proc");
  if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")) return fail("dev");
  mkdir("dev/pts", 0755);
  mkdir("dev/shm", 0755);
  mkdir("dev/mqueue", 0755);
  if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")) return fail("devpts");
  if (mount("shm", "dev/shm", "tmpfs", nosuid, "mode=1777,size=65536k")) return fail("shm");
  if (mount("mqueue", "dev/mqueue", "mqueue", nosuid, NULL)) return fail("mqueue");
  if (mount("sysfs", "sys", "sysfs", nosuid | MS_RDONLY, NULL)) return fail("sysfs");
  if (syscall(SYS_pivot_root, ".", ".")) return fail("pivot_root");
  if (umount2(".", MNT_DETACH)) return fail("detach the old root");
  if (chdir("/")) return fail("chdir /");
  char *argv[] = {"/bin/true", NULL};
  execv(argv[0], argv);
  return fail("exec /bin/true");
}

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: floor ROOTFS\n"), 2;
  struct clone_args a = {
      .flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET,
      .exit_signal = SIGCHLD,
  };
  long pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid < 0) return fail("clone3");
  if (pid == 0) _exit(container(argv[1]));
  int status;
  if (waitpid(pid, &status, 0) < 0) return fail("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
