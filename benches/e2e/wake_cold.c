// What a sleep costs a poll thread's caches: the time of one dependent load per cache
// line over a small working set, warm, after a trivial system call, and after a 200 us
// `clock_nanosleep` (a load-based PMD sleep), in TSC cycles per load, on core 1.
//
// A PMD that sleeps between iterations pays for its whole working set again after each
// wakeup if the sleep leaves its caches cold. On the VM the end-to-end series of
// 2026-12-07 ran on (two runs), after a 200 us sleep 64 lines of one 4 KiB page took
// 19-20 cycles a load (3.3-3.5 warm) and 64 lines one to a page 59-60 (4-6 warm): the
// sleep emptied L1, L2 and the TLBs, and a system call alone emptied nothing. Build and
// run:
//
//     clang -O2 benches/e2e/wake_cold.c -o /tmp/wake_cold && /tmp/wake_cold
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define ROUNDS 300
#define REGION (8ul << 20)

enum between { NOTHING, SYSCALL, SLEEP };

static uint64_t tsc(void) {
    unsigned aux;
    return __rdtscp(&aux);
}

// Links `lines` cache lines, `per_page` to a 4 KiB page, into one random cycle and
// returns the mean cycles of a load along it, with `what` done before each round.
static double chase(char *base, size_t lines, size_t per_page, enum between what) {
    size_t *off = malloc(lines * sizeof *off);
    if (!off) {
        perror("malloc");
        exit(1);
    }
    size_t stride = 64 / per_page; // spread a page's lines over its 64 line slots
    for (size_t i = 0; i < lines; i++) {
        size_t page = i / per_page, slot = (i % per_page) * stride + page % stride;
        off[i] = page * 4096 + slot * 64;
    }
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1), t = off[i];
        off[i] = off[j];
        off[j] = t;
    }
    for (size_t i = 0; i < lines; i++)
        *(char **)(base + off[i]) = base + off[(i + 1) % lines];
    char *p = base + off[0];
    for (size_t i = 0; i < 2 * lines; i++)
        p = *(char **)p;
    uint64_t total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (what == SYSCALL) {
            syscall(SYS_getppid);
        } else if (what == SLEEP) {
            struct timespec ts = {0, 200000};
            clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        }
        uint64_t t0 = tsc();
        for (size_t i = 0; i < lines; i++)
            p = *(char **)p;
        total += tsc() - t0;
    }
    free(off);
    if (p == NULL)
        puts("unreachable");
    return (double)total / ROUNDS / (double)lines;
}

int main(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        return 1;
    }
    char *base = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(base, 1, REGION);
    static const size_t shapes[][2] = {{64, 64}, {64, 1}, {256, 64}, {256, 1}, {512, 8}};
    printf("lines per_page  warm  after_getppid  after_200us_sleep  (TSC cycles a load)\n");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        size_t n = shapes[k][0], pp = shapes[k][1];
        printf("%5zu %8zu %5.1f %14.1f %18.1f\n", n, pp, chase(base, n, pp, NOTHING),
               chase(base, n, pp, SYSCALL), chase(base, n, pp, SLEEP));
    }
    return 0;
}
