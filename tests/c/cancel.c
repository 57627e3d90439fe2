/*
 * A C host whose Cancel button is pressed while a publish is uploading: the publish runs on a
 * second thread, and this thread calls tp_cancel once the upload is under way (the emulator is
 * told to take the upload slowly). Default signal dispositions. Portable: pthreads on POSIX,
 * CreateThread/WaitForSingleObject on Windows (x86_64-w64-mingw32-gcc).
 *
 * Usage: cancel CONFIG_JSON_FILE INPUT_FILE ROUNDS [building]
 * With "building" the cancel comes while the extract is being built from rows
 * (TP_PHASE_BUILDING_EXTRACT) instead of while uploading.
 * The config's "datasource_name" must be "@NAME@": round i publishes as "Cancel-i".
 * Each round feeds INPUT_FILE in 1 MiB chunks, starts tp_finalize_and_publish on a thread,
 * waits for TP_PHASE_UPLOADING (or the build) plus 300 ms, calls tp_cancel, and measures the time from
 * tp_cancel to the return. Prints per round:
 *   round I status S cancel_to_return_ms M
 *   round I error MESSAGE
 * and at the end "N passed, N failed". Exits 0 when every round returned TP_ERR_CANCELLED
 * within 1000 ms with the resume command in tp_last_error, 1 otherwise, 3 on a usage error.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#include <time.h>
#endif

#include "read_all.h"
#include "tableau_publisher.h"

/* ---- a little portability ------------------------------------------------------------------ */

/* Milliseconds on a monotonic clock. */
static double now_ms(void) {
#ifdef _WIN32
    LARGE_INTEGER freq, t;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1000.0 / (double)freq.QuadPart;
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
#endif
}

static void sleep_ms(int ms) {
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&t, NULL);
#endif
}

/* A flag one thread sets and another polls. */
#ifdef _WIN32
typedef volatile LONG flag_t;
static void flag_set(flag_t *f) { InterlockedExchange(f, 1); }
static int flag_get(flag_t *f) { return InterlockedCompareExchange(f, 0, 0) != 0; }
#else
typedef volatile int flag_t;
static void flag_set(flag_t *f) { __atomic_store_n(f, 1, __ATOMIC_SEQ_CST); }
static int flag_get(flag_t *f) { return __atomic_load_n(f, __ATOMIC_SEQ_CST) != 0; }
#endif

/* ---- one publish on a thread --------------------------------------------------------------- */

struct call {
    tp_publisher *p;
    flag_t reached; /* the phase to cancel in: set by the progress callback, on the publishing thread */
    tp_status status;
    double returned_ms;
};

/* The phase in which the Cancel button is pressed. */
static int cancel_phase = TP_PHASE_UPLOADING;

static int32_t on_progress(void *userdata, const tp_progress *progress) {
    struct call *c = (struct call *)userdata;
    if ((int)progress->phase == cancel_phase) flag_set(&c->reached);
    return 0;
}

static void publish(struct call *c) {
    c->status = tp_finalize_and_publish(c->p);
    c->returned_ms = now_ms();
}

#ifdef _WIN32
static DWORD WINAPI publish_thread(LPVOID arg) {
    publish((struct call *)arg);
    return 0;
}
#else
static void *publish_thread(void *arg) {
    publish((struct call *)arg);
    return NULL;
}
#endif

/* ---- the rounds ---------------------------------------------------------------------------- */

static char *config_template;
static const char *input_path;
static int passed = 0, failed = 0;

#define CHECK(cond, round, what)                                                  \
    do {                                                                          \
        if (cond) {                                                               \
            passed++;                                                             \
        } else {                                                                  \
            failed++;                                                             \
            printf("round %d FAIL %s:%d: %s\n", round, __FILE__, __LINE__, what); \
        }                                                                         \
    } while (0)

/* The template with "@NAME@" replaced by Cancel-INDEX, or NULL. */
static char *config_for(int index) {
    const char *at = strstr(config_template, "@NAME@");
    if (!at) return NULL;
    char name[64];
    snprintf(name, sizeof name, "Cancel-%d", index);
    size_t head = (size_t)(at - config_template);
    size_t len = strlen(config_template) - 6 + strlen(name) + 1;
    char *out = (char *)malloc(len);
    if (!out) return NULL;
    memcpy(out, config_template, head);
    strcpy(out + head, name);
    strcat(out, at + 6);
    return out;
}

static int feed(tp_publisher *p) {
    FILE *in = fopen(input_path, "rb");
    if (!in) return -1;
    static const size_t chunk = 1024 * 1024;
    unsigned char *buf = (unsigned char *)malloc(chunk);
    size_t n;
    int rc = buf ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, chunk, in)) > 0) {
        if (tp_feed_chunk(p, buf, n) != TP_OK) rc = -1;
    }
    free(buf);
    fclose(in);
    return rc;
}

static void round_trip(int round) {
    char *config = config_for(round);
    struct call c;
    memset(&c, 0, sizeof c);
    c.status = TP_ERR_INTERNAL;
    CHECK(config != NULL, round, "the config has @NAME@");
    if (!config) return;
    tp_status rc = tp_init(config, &c.p);
    free(config);
    CHECK(rc == TP_OK, round, "tp_init");
    if (rc != TP_OK) {
        printf("round %d error %s\n", round, tp_last_error(NULL));
        return;
    }
    CHECK(feed(c.p) == 0, round, "feed the input");
    CHECK(tp_set_progress_callback(c.p, on_progress, &c) == TP_OK, round, "progress callback");

#ifdef _WIN32
    HANDLE thread = CreateThread(NULL, 0, publish_thread, &c, 0, NULL);
    CHECK(thread != NULL, round, "CreateThread");
    if (!thread) return;
#else
    pthread_t thread;
    int started = pthread_create(&thread, NULL, publish_thread, &c) == 0;
    CHECK(started, round, "pthread_create");
    if (!started) return;
#endif
    /* The Cancel button is pressed a little after the phase started (at most 60 s). */
    for (int waited = 0; !flag_get(&c.reached) && waited < 60000; waited += 10) sleep_ms(10);
    CHECK(flag_get(&c.reached), round, "the phase to cancel in started");
    sleep_ms(300);
    double cancelled_ms = now_ms();
    CHECK(tp_cancel(c.p) == TP_OK, round, "tp_cancel from another thread");
    CHECK(tp_cancel(c.p) == TP_OK, round, "tp_cancel twice");
#ifdef _WIN32
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
#else
    pthread_join(thread, NULL);
#endif
    double took = c.returned_ms - cancelled_ms;
    printf("round %d status %d cancel_to_return_ms %.1f\n", round, (int)c.status, took);
    const char *message = tp_last_error(c.p);
    if (c.status != TP_OK) printf("round %d error %s\n", round, message);
    CHECK(c.status == TP_ERR_CANCELLED, round, "the publish returned TP_ERR_CANCELLED");
    CHECK(took < 1000.0, round, "within a second of tp_cancel");
    CHECK(strstr(message, "cancelled by the host") != NULL, round, "the message says cancelled");
    CHECK(strstr(message, "tabpub resume ") != NULL, round, "the message has the resume command");
    CHECK(tp_cancel(c.p) == TP_OK, round, "tp_cancel after the call returned is harmless");
    tp_free(c.p);
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "building") == 0)) {
        fprintf(stderr, "usage: cancel CONFIG_JSON_FILE INPUT_FILE ROUNDS [building]\n");
        return 3;
    }
    if (argc == 5) cancel_phase = TP_PHASE_BUILDING_EXTRACT;
#ifndef _WIN32
    signal(SIGPIPE, SIG_DFL);
#endif
    config_template = read_all(argv[1]);
    input_path = argv[2];
    int rounds = atoi(argv[3]);
    if (!config_template || rounds < 1) {
        fprintf(stderr, "bad arguments\n");
        return 3;
    }
    for (int i = 0; i < rounds; i++) round_trip(i);
    free(config_template);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
