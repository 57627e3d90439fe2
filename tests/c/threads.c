/*
 * A C host that publishes from several threads at once, one handle each, with the same
 * credentials (as several output tools of one workflow would). Default signal dispositions.
 *
 * Usage: threads CONFIG_JSON_FILE INPUT_FILE THREADS NAME_PREFIX
 * The config's "datasource_name" must be "@NAME@": thread i publishes as NAME_PREFIX-i.
 * Prints "thread I status N" (and "thread I error MESSAGE" on failure) per thread.
 * Exits 0 when every thread published, 1 otherwise, 3 on a usage error.
 * Portable: pthreads on POSIX, CreateThread on Windows (x86_64-w64-mingw32-gcc).
 */
#ifdef _WIN32
#include <windows.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read_all.h"
#include "tableau_publisher.h"

#define MAX_THREADS 32

static char *config_template;
static const char *input_path;
static const char *prefix;

struct job {
    int index;
    tp_status status;
    char error[1024];
};

/* The template with "@NAME@" replaced by PREFIX-INDEX. */
static char *config_for(int index) {
    const char *at = strstr(config_template, "@NAME@");
    if (!at) return NULL;
    char name[256];
    snprintf(name, sizeof name, "%s-%d", prefix, index);
    size_t head = (size_t)(at - config_template);
    size_t len = strlen(config_template) - 6 + strlen(name) + 1;
    char *out = (char *)malloc(len);
    memcpy(out, config_template, head);
    strcpy(out + head, name);
    strcat(out, at + 6);
    return out;
}

static void publish(struct job *job) {
    char *config = config_for(job->index);
    tp_publisher *p = NULL;
    job->status = tp_init(config, &p);
    free(config);
    if (job->status != TP_OK) {
        snprintf(job->error, sizeof job->error, "%s", tp_last_error(NULL));
        return;
    }
    FILE *in = fopen(input_path, "rb");
    static const size_t chunk = 1024 * 1024;
    unsigned char *buf = (unsigned char *)malloc(chunk);
    size_t n;
    while (in && job->status == TP_OK && (n = fread(buf, 1, chunk, in)) > 0) {
        job->status = tp_feed_chunk(p, buf, n);
    }
    free(buf);
    if (in) fclose(in);
    if (job->status == TP_OK) job->status = tp_finalize_and_publish(p);
    if (job->status != TP_OK) snprintf(job->error, sizeof job->error, "%s", tp_last_error(p));
    tp_free(p);
}

#ifdef _WIN32
typedef HANDLE thread_t;
static DWORD WINAPI publish_thread(LPVOID arg) {
    publish((struct job *)arg);
    return 0;
}
static void thread_start(thread_t *t, struct job *job) {
    *t = CreateThread(NULL, 0, publish_thread, job, 0, NULL);
}
static void thread_join(thread_t t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
typedef pthread_t thread_t;
static void *publish_thread(void *arg) {
    publish((struct job *)arg);
    return NULL;
}
static void thread_start(thread_t *t, struct job *job) { pthread_create(t, NULL, publish_thread, job); }
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: threads CONFIG_JSON_FILE INPUT_FILE THREADS NAME_PREFIX\n");
        return 3;
    }
#ifndef _WIN32
    signal(SIGPIPE, SIG_DFL);
#endif
    config_template = read_all(argv[1]);
    input_path = argv[2];
    int threads = atoi(argv[3]);
    prefix = argv[4];
    if (!config_template || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "bad arguments\n");
        return 3;
    }
    thread_t ids[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        jobs[i].index = i;
        jobs[i].status = TP_OK;
        jobs[i].error[0] = 0;
        thread_start(&ids[i], &jobs[i]);
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        thread_join(ids[i]);
        printf("thread %d status %d\n", i, (int)jobs[i].status);
        if (jobs[i].status != TP_OK) {
            printf("thread %d error %s\n", i, jobs[i].error);
            failed++;
        }
    }
    free(config_template);
    return failed ? 1 : 0;
}
