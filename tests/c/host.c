/*
 * A plain C host, as an ETL vendor would write one: default signal dispositions (SIGPIPE
 * included, set explicitly so nothing inherited from the test harness changes that), no
 * signal handlers, nothing special. Publishes one file through the C ABI, fed in chunks.
 *
 * Usage: host CONFIG_JSON_FILE INPUT_FILE CHUNK_BYTES [--progress]
 * Prints "status N", then "result JSON" or "error MESSAGE", then "maxrss_kib N" (peak RSS of
 * the whole host process), one per line. With --progress, prints "phase N" lines as the
 * publish moves on (flushed at once, for a harness that kills the host at a given phase).
 * Exits 0 when published, 1 when the library reported a failure, 3 on a usage error.
 * Dying from a signal is what the harness checks for.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#include <psapi.h>
#else
#include <sys/resource.h>
#endif

#include "read_all.h"
#include "tableau_publisher.h"

/* This process's peak RSS. VmHWM belongs to the memory this program mapped since exec;
 * getrusage's ru_maxrss would also count the parent's memory at fork time. */
static long peak_rss_kib(void) {
#ifdef _WIN32
    PROCESS_MEMORY_COUNTERS counters;
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &counters, sizeof counters)) return -1;
    return (long)(counters.PeakWorkingSetSize / 1024);
#else
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    }
    if (f) fclose(f);
    if (kib < 0) {
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        kib = usage.ru_maxrss;
    }
    return kib;
#endif
}

static int32_t on_progress(void *userdata, const tp_progress *progress) {
    int *last = (int *)userdata;
    if ((int)progress->phase != *last) {
        *last = (int)progress->phase;
        printf("phase %d\n", *last);
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: host CONFIG_JSON_FILE INPUT_FILE CHUNK_BYTES [--progress]\n");
        return 3;
    }
#ifndef _WIN32 /* Windows has no SIGPIPE: a reset is an error return there, not a signal. */
    /* The defaults a C, C++, C# or Python host has: SIGPIPE terminates, and is not blocked. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
#endif

    char *config = read_all(argv[1]);
    if (!config) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 3;
    }
    size_t chunk = (size_t)strtoull(argv[3], NULL, 10);
    int with_progress = argc > 4 && strcmp(argv[4], "--progress") == 0;

    tp_publisher *p = NULL;
    tp_status rc = tp_init(config, &p);
    free(config);
    if (rc != TP_OK) {
        printf("status %d\nerror %s\n", (int)rc, tp_last_error(NULL));
        return 1;
    }
    int last_phase = -1;
    if (with_progress) tp_set_progress_callback(p, on_progress, &last_phase);

    FILE *in = fopen(argv[2], "rb");
    if (!in) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        tp_free(p);
        return 3;
    }
    unsigned char *buf = (unsigned char *)malloc(chunk ? chunk : 1);
    size_t n;
    while (rc == TP_OK && (n = fread(buf, 1, chunk ? chunk : 1, in)) > 0) {
        rc = tp_feed_chunk(p, buf, n);
    }
    free(buf);
    fclose(in);
    if (rc == TP_OK) {
        if (with_progress) {
            printf("fed\n");
            fflush(stdout);
        }
        rc = tp_finalize_and_publish(p);
    }
    printf("status %d\n", (int)rc);
    if (rc == TP_OK) {
        printf("result %s\n", tp_result_json(p));
    } else {
        printf("error %s\n", tp_last_error(p));
    }
    tp_free(p);
    printf("maxrss_kib %ld\n", peak_rss_kib());
    return rc == TP_OK ? 0 : 1;
}
