/* Counts the times this VM's vCPU stood still: a loop pinned to one core reads the TSC
 * as fast as it can and sorts every gap between two reads by length. Run one per core
 * at the same time to see what the host does when both vCPUs are busy (benches/e2e/HISTORY.md,
 * eighteenth session: 100 ms stops, a host CPU quota):
 *
 *   gcc -O2 -o /tmp/vcpu_stops benches/e2e/vcpu_stops.c
 *   /tmp/vcpu_stops 0 20 & /tmp/vcpu_stops 1 20; wait
 *
 * Arguments: core, seconds, and optionally the TSC rate in GHz (default: read from
 * /proc/cpuinfo's "cpu MHz", which on a VM is the TSC's nominal rate). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

static double cpu_ghz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1)
			break;
	if (f)
		fclose(f);
	return mhz > 0 ? mhz / 1000 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s core seconds [tsc-ghz]\n", argv[0]);
		return 2;
	}
	int core = atoi(argv[1]);
	double secs = atof(argv[2]);
	double ghz = argc > 3 ? atof(argv[3]) : cpu_ghz();
	if (ghz <= 0 || secs <= 0) {
		fprintf(stderr, "vcpu_stops: need seconds > 0 and a TSC rate (pass it in GHz)\n");
		return 2;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(core, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		perror("vcpu_stops: pinning");
		return 1;
	}
	/* Gap classes, in microseconds: at least 10, 100, 1,000, 10,000, 100,000. */
	static const double bound[] = { 10, 100, 1000, 10000, 100000 };
	static const char *name[] = { "10 us", "100 us", "1 ms", "10 ms", "100 ms" };
	long count[5] = { 0 };
	double total_us[5] = { 0 }, longest = 0;
	uint64_t prev = __rdtsc(), end = prev + (uint64_t)(secs * ghz * 1e9);
	for (;;) {
		uint64_t now = __rdtsc();
		if (now > end)
			break;
		double gap = (now - prev) / (ghz * 1e3);
		prev = now;
		if (gap > longest)
			longest = gap;
		for (int i = 4; i >= 0; i--)
			if (gap >= bound[i]) {
				count[i]++;
				total_us[i] += gap;
				break;
			}
	}
	printf("core %d, %.0f s at %.3f GHz:\n", core, secs, ghz);
	for (int i = 0; i < 5; i++)
		printf("  gaps of %s or more (below the next class): %ld, %.1f ms in all\n", name[i],
		       count[i], total_us[i] / 1000);
	printf("  longest gap %.1f ms\n", longest / 1000);
	return 0;
}
