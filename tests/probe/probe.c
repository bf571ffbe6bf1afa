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
#include <sys/wait.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) {
        printf("ERR %d\n", errno);
        return 1;
    }
    printf("OK %ld\n", r);
    return 0;
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
    if (!strcmp(c, "exe-write")) {
        /* CVE-2019-5736: hold the runtime binary through /proc/PID/exe, wait for the runtime
         * to exit (ETXTBSY gone), then reopen it for writing and overwrite it. */
        int fd = open(argv[2], O_PATH);
        if (fd < 0)
            return report(-1);
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        for (int i = 0; i < 500; i++) {
            int w = open(p, O_WRONLY | O_TRUNC);
            if (w >= 0) {
                write(w, "#!/bin/sh\necho pwned\n", 21);
                return report(w);
            }
            if (errno != ETXTBSY)
                return report(-1);
            usleep(10000);
        }
        return report(-1);
    }
    fprintf(stderr, "probe: unknown command %s\n", c);
    return 2;
}
