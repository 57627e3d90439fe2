/*
 * Drives the C ABI the way an ETL host does, against a running emulator.
 * Usage: publish_test SERVER_URL SPOOL_DIR INPUT_FILE EXPECTED_SHA256
 * Compiled by tests/c_abi.rs with -Wall -Wextra -Werror, as C and as C++.
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tableau_publisher.h"

static char config[4096];

static void make_named_config(const char *url, const char *spool, const char *name, const char *extra) {
    snprintf(config, sizeof config,
             "{\"server_url\":\"%s\",\"site\":\"\",\"auth\":{\"method\":\"pat\",\"token_name\":\"ci\","
             "\"token_secret\":\"ci-secret\"},\"project\":\"Finance/Quarterly\",\"datasource_name\":"
             "\"%s\",\"mode\":\"create_new\",\"spool_dir\":\"%s\"%s}",
             url, name, spool, extra);
}

static void make_config(const char *url, const char *spool, const char *extra) {
    make_named_config(url, spool, "From C", extra);
}

struct progress_log {
    int calls;
    int phases_seen;
    uint64_t last_sent;
    uint64_t total;
    int cancel_after_uploading;
};

static int32_t on_progress(void *userdata, const tp_progress *progress) {
    struct progress_log *log = (struct progress_log *)userdata;
    log->calls++;
    log->phases_seen |= 1 << (int)progress->phase;
    if (progress->phase == TP_PHASE_UPLOADING) {
        log->last_sent = progress->bytes_sent;
        log->total = progress->bytes_total;
        if (log->cancel_after_uploading) return 1;
    }
    return 0;
}

/* A callback that misuses its own handle, as a careless host might. */
struct reentry_log {
    tp_publisher *p;
    int tried;
    tp_status fed;
    tp_status preflight;
    int busy_message;
    int result_null;
};

static int32_t on_progress_reenter(void *userdata, const tp_progress *progress) {
    struct reentry_log *log = (struct reentry_log *)userdata;
    if (progress->phase == TP_PHASE_UPLOADING && !log->tried) {
        log->tried = 1;
        log->fed = tp_feed_chunk(log->p, (const uint8_t *)"x", 1);
        log->preflight = tp_preflight(log->p);
        log->busy_message = strstr(tp_last_error(log->p), "in use") != NULL;
        log->result_null = tp_result_json(log->p) == NULL;
        tp_free(log->p); /* refused: the publish is still using the handle */
    }
    return 0;
}

/* What the log callback saw. */
struct log_lines {
    tp_publisher *p;    /* when set, the first line tries a call on it from inside the callback */
    tp_status reentry;  /* what that call got */
    int lines[4];       /* by tp_log_level */
    int secret;         /* a line held the PAT secret */
    int signed_in, published, preflight;
    int error_clash, error_resume;
};

static void on_log(void *userdata, tp_log_level level, const char *message) {
    struct log_lines *log = (struct log_lines *)userdata;
    if (log->p) {
        log->reentry = tp_feed_chunk(log->p, (const uint8_t *)"x", 1);
        log->p = NULL;
    }
    if ((int)level >= 1 && (int)level <= 3) log->lines[(int)level]++;
    if (strstr(message, "ci-secret")) log->secret = 1;
    if (level == TP_LOG_INFO && strstr(message, "signed in to the Default site")) log->signed_in++;
    if (level == TP_LOG_INFO && strstr(message, "published data source \"From C\"")) log->published++;
    if (level == TP_LOG_INFO && strstr(message, "preflight passed")) log->preflight++;
    if (level == TP_LOG_ERROR && strstr(message, "already exists")) log->error_clash++;
    if (level == TP_LOG_ERROR && strstr(message, "tabpub resume ")) log->error_resume++;
}

/* A progress callback that cancels with tp_cancel (allowed from inside a callback). */
struct cancel_inside {
    tp_publisher *p;
    int called;
    tp_status cancel;
};

static int32_t on_progress_cancel(void *userdata, const tp_progress *progress) {
    struct cancel_inside *c = (struct cancel_inside *)userdata;
    if (progress->phase == TP_PHASE_UPLOADING && !c->called) {
        c->called = 1;
        c->cancel = tp_cancel(c->p);
    }
    return 0;
}

static int feed_file(tp_publisher *p, const char *path, size_t piece) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char *buf = (unsigned char *)malloc(piece);
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, piece, f)) > 0) {
        if (tp_feed_chunk(p, buf, n) != TP_OK) { rc = -1; break; }
    }
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER_URL SPOOL_DIR INPUT_FILE EXPECTED_SHA256\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *spool = argv[2], *input = argv[3], *sha = argv[4];
    tp_publisher *p = NULL;

    /* Versions. */
    CHECK(tp_abi_version() == TP_ABI_VERSION, "ABI version matches the header");
    CHECK(tp_version() != NULL && strlen(tp_version()) > 0, "version string");
    CHECK(strcmp(tp_status_str(TP_ERR_AUTH), "authentication failed") == 0, "status string");
    CHECK(strcmp(tp_status_str(999), "unknown status") == 0, "unknown status string");

    /* tp_init error paths. */
    CHECK(tp_init(NULL, &p) == TP_ERR_INVALID_ARGUMENT && p == NULL, "NULL config");
    make_config(url, spool, "");
    CHECK(tp_init(config, NULL) == TP_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(tp_init("{not json", &p) == TP_ERR_CONFIG && p == NULL, "bad JSON");
    CHECK(strstr(tp_last_error(NULL), "not valid JSON") != NULL, "bad JSON message");
    make_config(url, spool, ",\"chunk_sise\":1");
    CHECK(tp_init(config, &p) == TP_ERR_CONFIG && p == NULL, "unknown key");
    CHECK(strstr(tp_last_error(NULL), "chunk_sise") != NULL, "unknown key is named");
    CHECK(tp_init("\xff\xfe", &p) == TP_ERR_INVALID_ARGUMENT, "non-UTF-8 config");

    /* NULL handle paths. */
    CHECK(tp_feed_chunk(NULL, (const uint8_t *)"x", 1) == TP_ERR_INVALID_ARGUMENT, "feed NULL handle");
    CHECK(tp_finalize_and_publish(NULL) == TP_ERR_INVALID_ARGUMENT, "finalize NULL handle");
    CHECK(tp_cancel(NULL) == TP_ERR_INVALID_ARGUMENT, "cancel NULL handle");
    CHECK(tp_set_log_callback(NULL, on_log, NULL) == TP_ERR_INVALID_ARGUMENT, "log callback on NULL handle");
    CHECK(tp_result_json(NULL) == NULL, "result of NULL handle");
    tp_free(NULL);

    /* A real publish. */
    make_config(url, spool, "");
    CHECK(tp_init(config, &p) == TP_OK && p != NULL, "init");
    CHECK(strcmp(tp_last_error(NULL), "") == 0, "no init error after success");
    CHECK(tp_feed_chunk(p, NULL, 0) == TP_OK, "(NULL, 0) is an empty chunk");
    CHECK(tp_feed_chunk(p, NULL, 5) == TP_ERR_INVALID_ARGUMENT, "(NULL, 5) is an error");
    CHECK(strlen(tp_last_error(p)) > 0, "message for (NULL, 5)");
    CHECK(tp_result_json(p) == NULL, "no result before finalize");
    CHECK(tp_preflight(NULL) == TP_ERR_INVALID_ARGUMENT, "preflight NULL handle");
    CHECK(tp_preflight(p) == TP_OK, "preflight before any data");
    CHECK(feed_file(p, input, 1000) == 0, "feed the file");
    struct progress_log log = {0, 0, 0, 0, 0};
    CHECK(tp_set_progress_callback(NULL, on_progress, &log) == TP_ERR_INVALID_ARGUMENT, "callback on NULL handle");
    CHECK(tp_set_progress_callback(p, on_progress, &log) == TP_OK, "set progress callback");
    struct log_lines lines;
    memset(&lines, 0, sizeof lines);
    lines.p = p;
    lines.reentry = TP_OK;
    CHECK(tp_set_log_callback(p, on_log, &lines) == TP_OK, "set log callback");
    tp_status rc = tp_finalize_and_publish(p);
    CHECK(rc == TP_OK, "finalize");
    if (rc != TP_OK) fprintf(stderr, "  error: %s\n", tp_last_error(p));
    const char *result = tp_result_json(p);
    CHECK(result != NULL && strstr(result, sha) != NULL, "result JSON has the sha256");
    CHECK(result != NULL && strstr(result, "\"datasource_id\":\"") != NULL, "result JSON has the id");
    if (result) printf("%s\n", result);
    CHECK(log.calls >= 5, "progress callback was called");
    CHECK((log.phases_seen & (1 << TP_PHASE_SIGNING_IN)) && (log.phases_seen & (1 << TP_PHASE_UPLOADING)) &&
              (log.phases_seen & (1 << TP_PHASE_SIGNING_OUT)),
          "progress saw sign-in, upload and sign-out");
    CHECK(log.total > 0 && log.last_sent == log.total, "progress counted every byte");
    CHECK(lines.reentry == TP_ERR_STATE, "a call on the handle from inside the log callback is TP_ERR_STATE");
    CHECK(lines.signed_in == 1, "the log says it signed in");
    CHECK(lines.published == 1, "the log says it published");
    CHECK(lines.lines[TP_LOG_ERROR] == 0, "no error line for a publish that worked");
    CHECK(lines.secret == 0, "no log line holds the secret");
    CHECK(tp_cancel(p) == TP_OK, "tp_cancel when nothing runs is harmless");
    CHECK(tp_feed_chunk(p, (const uint8_t *)"x", 1) == TP_ERR_STATE, "feed after finalize");
    CHECK(tp_finalize_and_publish(p) == TP_ERR_STATE, "finalize twice");
    CHECK(strstr(tp_last_error(p), "already published") != NULL, "state message");
    tp_free(p);
    p = NULL;

    /* A file the host already has, published in place. */
    make_named_config(url, spool, "From F", "");
    CHECK(tp_init(config, &p) == TP_OK, "init for feed_file");
    CHECK(tp_feed_file(p, NULL) == TP_ERR_INVALID_ARGUMENT, "feed_file NULL path");
    CHECK(tp_feed_file(NULL, input) == TP_ERR_INVALID_ARGUMENT, "feed_file NULL handle");
    CHECK(tp_feed_file(p, "/nonexistent/extract.hyper") != TP_OK, "feed_file missing file");
    CHECK(tp_feed_file(p, input) == TP_OK, "feed_file");
    CHECK(tp_feed_chunk(p, (const uint8_t *)"x", 1) == TP_ERR_STATE, "no chunks after feed_file");
    rc = tp_finalize_and_publish(p);
    CHECK(rc == TP_OK, "finalize feed_file");
    if (rc != TP_OK) fprintf(stderr, "  error: %s\n", tp_last_error(p));
    result = tp_result_json(p);
    CHECK(result != NULL && strstr(result, sha) != NULL, "feed_file result has the sha256");
    {
        FILE *still = fopen(input, "rb");
        CHECK(still != NULL, "input file still exists");
        if (still) fclose(still);
    }
    tp_free(p);
    p = NULL;

    /* The host cancels from the progress callback: TP_ERR_CANCELLED, nothing published. */
    make_named_config(url, spool, "From X", "");
    CHECK(tp_init(config, &p) == TP_OK, "init for cancel");
    CHECK(feed_file(p, input, 4096) == 0, "feed for cancel");
    struct progress_log cancel = {0, 0, 0, 0, 1};
    tp_set_progress_callback(p, on_progress, &cancel);
    CHECK(tp_finalize_and_publish(p) == TP_ERR_CANCELLED, "cancel gives TP_ERR_CANCELLED");
    CHECK(strstr(tp_last_error(p), "cancelled") != NULL, "cancel message");
    CHECK(tp_set_progress_callback(p, NULL, NULL) == TP_OK, "clear the callback");
    CHECK(tp_finalize_and_publish(p) == TP_OK, "publish after a cancel");
    tp_free(p);
    p = NULL;

    /* tp_cancel: made before the call, it stops the next call at once (never lost) and is used
       up by it; made from inside a callback, it stops the call it is in. */
    make_named_config(url, spool, "From K", "");
    CHECK(tp_init(config, &p) == TP_OK, "init for tp_cancel");
    CHECK(feed_file(p, input, 4096) == 0, "feed for tp_cancel");
    memset(&lines, 0, sizeof lines);
    CHECK(tp_set_log_callback(p, on_log, &lines) == TP_OK, "log callback for tp_cancel");
    CHECK(tp_cancel(p) == TP_OK, "tp_cancel before the call");
    CHECK(tp_finalize_and_publish(p) == TP_ERR_CANCELLED, "a cancel made before the call stops it");
    CHECK(strstr(tp_last_error(p), "cancelled by the host") != NULL, "cancel-before message");
    CHECK(strstr(tp_last_error(p), "tabpub resume ") != NULL, "the kept spool's resume command");
    CHECK(lines.error_resume == 1, "the error line has the resume command");
    CHECK(lines.signed_in == 0, "a cancel made before the call signs nothing in");
    struct cancel_inside inside = {p, 0, TP_ERR_INTERNAL};
    CHECK(tp_set_progress_callback(p, on_progress_cancel, &inside) == TP_OK, "callback that calls tp_cancel");
    CHECK(tp_finalize_and_publish(p) == TP_ERR_CANCELLED, "tp_cancel from inside the callback stops the call");
    CHECK(inside.called && inside.cancel == TP_OK, "tp_cancel works inside the callback");
    CHECK(tp_set_progress_callback(p, NULL, NULL) == TP_OK, "clear the cancelling callback");
    CHECK(tp_set_log_callback(p, NULL, NULL) == TP_OK, "clear the log callback");
    CHECK(tp_finalize_and_publish(p) == TP_OK, "the cancel was used up: the next call publishes");
    tp_free(p);
    p = NULL;

    /* Calls on the handle from inside its own callback are refused, not run on top of the
       publish that is using it; the publish itself completes. */
    make_named_config(url, spool, "From R", "");
    CHECK(tp_init(config, &p) == TP_OK, "init for reentry");
    CHECK(feed_file(p, input, 4096) == 0, "feed for reentry");
    struct reentry_log reentry = {p, 0, TP_OK, TP_OK, 0, 0};
    tp_set_progress_callback(p, on_progress_reenter, &reentry);
    CHECK(tp_finalize_and_publish(p) == TP_OK, "publish with a re-entering callback");
    CHECK(reentry.tried, "the callback ran");
    CHECK(reentry.fed == TP_ERR_STATE, "feed from inside the callback is TP_ERR_STATE");
    CHECK(reentry.preflight == TP_ERR_STATE, "preflight from inside the callback is TP_ERR_STATE");
    CHECK(reentry.busy_message, "tp_last_error inside the callback says the handle is in use");
    CHECK(reentry.result_null, "no result JSON while the handle is in use");
    CHECK(strstr(tp_result_json(p), "\"datasource_name\":\"From R\"") != NULL, "handle still valid after tp_free inside the callback");
    tp_free(p);
    p = NULL;

    /* A server-side refusal: same name again in create_new mode. */
    make_config(url, spool, "");
    CHECK(tp_init(config, &p) == TP_OK, "init again");
    CHECK(feed_file(p, input, 65536) == 0, "feed again");
    memset(&lines, 0, sizeof lines);
    CHECK(tp_set_log_callback(p, on_log, &lines) == TP_OK, "log callback for the clash");
    CHECK(tp_preflight(p) == TP_ERR_CONFLICT, "preflight finds the clash");
    CHECK(tp_finalize_and_publish(p) == TP_ERR_CONFLICT, "name clash is TP_ERR_CONFLICT");
    CHECK(lines.error_clash == 2, "an error line for the preflight and for the publish");
    CHECK(lines.error_resume == 1, "the publish's error line has the resume command");
    CHECK(lines.signed_in == 2 && lines.secret == 0, "sign-ins logged, no secret");
    CHECK(strstr(tp_last_error(p), "already exists") != NULL, "clash message says what happened");
    CHECK(strstr(tp_last_error(p), "ci-secret") == NULL, "no secret in the message");
    CHECK(tp_result_json(p) == NULL, "no result after failure");
    tp_free(p);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
