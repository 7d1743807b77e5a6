// Frames the kernel dropped on their way into a process's AF_XDP sockets, summed over
// all of its sockets: "<no free fill frame> <rx ring full>" (XDP_STATISTICS'
// rx_fill_ring_empty_descs and rx_ring_full; rvswitch's dpif/show reports the same two as
// no_buffer and queue_full).
//
// benches/e2e/run.sh reads it at both ends of a measurement window, for rvswitch and for
// ovs-vswitchd alike, so that frames offered and not delivered are told apart: a PMD that
// fell behind (ring full), or one that stopped long enough for its fill ring to run dry
// (on a shared host, mostly a stolen vCPU) — rather than the switch dropping them itself.
// The sockets belong to the switch, so they are duplicated into this process with
// pidfd_getfd(2) (root, or ptrace rights over the switch) and read with getsockopt.
//
// Usage: xsk_drops <pid>
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/if_xdp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: xsk_drops <pid>\n");
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        fprintf(stderr, "xsk_drops: pidfd_open(%d): %s\n", pid, strerror(errno));
        return 1;
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "xsk_drops: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    uint64_t no_frame = 0, ring_full = 0;
    int sockets = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[320], link[64];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strncmp(link, "socket:", 7) != 0)
            continue;
        int fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
        if (fd < 0)
            continue;
        struct xdp_statistics s;
        socklen_t len = sizeof s;
        memset(&s, 0, sizeof s);
        // Any other kind of socket refuses SOL_XDP.
        if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &s, &len) == 0) {
            no_frame += s.rx_fill_ring_empty_descs;
            ring_full += s.rx_ring_full;
            sockets++;
        }
        close(fd);
    }
    closedir(d);
    close(pidfd);
    if (sockets == 0) {
        fprintf(stderr, "xsk_drops: process %d has no AF_XDP socket\n", pid);
        return 1;
    }
    printf("%llu %llu\n", (unsigned long long)no_frame, (unsigned long long)ring_full);
    return 0;
}
