// Cross-core cache-line round trip, in TSC cycles: two threads pinned to cores 0 and 1
// take turns writing one shared line (median of 7 rounds of 200,000 hand-overs).
//
// benches/e2e/run.sh prints it before each run. Most of a PMD's user-space time on veth
// is spent waiting for lines the other core (the kernel receiving trafgen's frames) wrote
// last, so this figure moves both switches' cycles per packet. It varied from 177 to 737
// cycles between minutes on the shared machine these benchmarks ran on.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

#define HANDOVERS 200000
#define ROUNDS 7

static _Alignas(64) volatile uint64_t line;

static void pin(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(1);
    }
}

static void *peer(void *arg) {
    (void)arg;
    pin(0);
    for (uint64_t i = 0; i < (uint64_t)HANDOVERS * ROUNDS; i++) {
        while (line != 2 * i + 1)
            ;
        line = 2 * i + 2;
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, peer, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    pin(1);
    double rtt[ROUNDS];
    uint64_t i = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = __rdtsc();
        for (int k = 0; k < HANDOVERS; k++, i++) {
            line = 2 * i + 1;
            while (line != 2 * i + 2)
                ;
        }
        rtt[r] = (double)(__rdtsc() - t0) / HANDOVERS;
    }
    pthread_join(t, NULL);
    qsort(rtt, ROUNDS, sizeof rtt[0], cmp);
    printf("%.0f\n", rtt[ROUNDS / 2]);
    return 0;
}
