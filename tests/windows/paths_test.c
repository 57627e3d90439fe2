/* Windows paths through the C ABI (run under Wine by scripts/test-windows).
 *
 * Usage: paths_test URL BASE INPUT    (BASE, INPUT: Windows paths, ASCII)
 *
 * 1. tp_feed_file with a path holding backslashes, spaces and non-ASCII characters publishes
 *    the file in place ("Paths in place").
 * 2. A spool_dir holding spaces and non-ASCII characters, written with forward slashes in the
 *    config: a publish to a project that does not exist fails, and the message names the kept
 *    spool in native form (backslashes only, the UTF-8 intact, quoted in the resume command
 *    because of the space), and the manifest it names exists, with the path in it.
 * Prints "manifest <UTF-8 path>" for the script's tabpub.exe resume, then " passed, 0 failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#include "../c/check.h"
#include "tableau_publisher.h"

/* "é", "日本", "ü" and "données", spelled in UTF-8 bytes so the source's encoding cannot matter. */
#define E_ACUTE "\xc3\xa9"
#define NIHON "\xe6\x97\xa5\xe6\x9c\xac"
#define U_UML "\xc3\xbc"
#define DONNEES "donn\xc3\xa9" "es"

static wchar_t *wide(const char *utf8) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, NULL, 0);
    wchar_t *w = malloc(sizeof(wchar_t) * (size_t)(n > 0 ? n : 1));
    if (n <= 0 || !w || !MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, w, n)) {
        fprintf(stderr, "not UTF-8: %s\n", utf8);
        exit(2);
    }
    return w;
}

/* `s` with every '\' doubled, for a JSON string. */
static char *json_escaped(const char *s) {
    char *out = malloc(strlen(s) * 2 + 1), *o = out;
    for (; *s; s++) {
        if (*s == '\\') *o++ = '\\';
        *o++ = *s;
    }
    *o = 0;
    return out;
}

static char *config(const char *url, const char *spool_json, const char *project, const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"server_url\":\"%s\",\"site\":\"\",\"auth\":{\"method\":\"pat\",\"token_name\":\"ci\","
             "\"token_secret\":\"ci-secret\"},\"project\":\"%s\",\"datasource_name\":\"%s\","
             "\"mode\":\"create_new\",\"spool_dir\":\"%s\"}",
             url, project, name, spool_json);
    return buf;
}

static char *read_file(const char *utf8_path, size_t *len) {
    FILE *f = _wfopen(wide(utf8_path), L"rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 26);
    *len = fread(buf, 1, 1 << 26, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *url = argv[1], *base = argv[2], *input = argv[3];
    char in_dir[1024], in_file[1024], spool_dir[1024], spool_fwd[1024];
    snprintf(in_dir, sizeof in_dir, "%s\\input dir " U_UML, base);
    snprintf(in_file, sizeof in_file, "%s\\" DONNEES " " NIHON ".hyper", in_dir);
    snprintf(spool_dir, sizeof spool_dir, "%s\\spool dir " E_ACUTE NIHON, base);
    CHECK(_wmkdir(wide(in_dir)) == 0, "mkdir input dir");
    CHECK(_wmkdir(wide(spool_dir)) == 0, "mkdir spool dir");
    CHECK(CopyFileW(wide(input), wide(in_file), TRUE), "copy the input to its non-ASCII name");

    /* 1. tp_feed_file with backslashes, spaces and non-ASCII; the spool_dir too. */
    tp_publisher *p = NULL;
    tp_status s = tp_init(config(url, json_escaped(spool_dir), "Finance/Quarterly", "Paths in place"), &p);
    CHECK(s == TP_OK, tp_last_error(NULL));
    s = tp_feed_file(p, in_file);
    CHECK(s == TP_OK, tp_last_error(p));
    s = tp_finalize_and_publish(p);
    CHECK(s == TP_OK, tp_last_error(p));
    tp_free(p);

    /* 2. The same spool_dir written with forward slashes; a failing publish keeps the spool. */
    strcpy(spool_fwd, spool_dir);
    for (char *c = spool_fwd; *c; c++)
        if (*c == '\\') *c = '/';
    s = tp_init(config(url, spool_fwd, "No/Such/Project", "Paths kept"), &p);
    CHECK(s == TP_OK, tp_last_error(NULL));
    size_t len = 0;
    char *data = read_file(input, &len);
    CHECK(data && len > 0, "read the input");
    s = tp_feed_chunk(p, (const uint8_t *)data, len);
    CHECK(s == TP_OK, tp_last_error(p));
    s = tp_finalize_and_publish(p);
    CHECK(s == TP_ERR_NOT_FOUND, "a missing project is TP_ERR_NOT_FOUND");
    const char *msg = tp_last_error(p);
    printf("message: %s\n", msg);
    char kept_prefix[1100];
    snprintf(kept_prefix, sizeof kept_prefix, "%s\\tableau-publisher\\tableau-publisher-", spool_dir);
    const char *kept = strstr(msg, kept_prefix);
    CHECK(kept != NULL, "the message names the kept spool in native form, UTF-8 intact");
    CHECK(strstr(msg, "/") == NULL || strstr(msg, spool_fwd) == NULL, "no forward-slash form of the spool dir");
    /* The manifest: quoted (the path has a space), after "tabpub resume ". */
    const char *resume = strstr(msg, "tabpub resume \"");
    CHECK(resume != NULL, "the resume command quotes the manifest's path");
    if (resume) {
        char manifest[1100];
        const char *start = resume + strlen("tabpub resume \"");
        const char *end = strchr(start, '"');
        size_t n = end ? (size_t)(end - start) : 0;
        CHECK(n > 0 && n < sizeof manifest, "a quoted manifest path");
        memcpy(manifest, start, n);
        manifest[n] = 0;
        CHECK(strncmp(manifest, kept_prefix, strlen(kept_prefix)) == 0, "the manifest is next to the spool");
        size_t mlen = 0;
        char *m = read_file(manifest, &mlen);
        CHECK(m != NULL, "the manifest exists at the path the message names");
        if (m) {
            m[mlen] = 0;
            /* In JSON every '\' of the path is doubled. */
            char *escaped = json_escaped(spool_dir);
            CHECK(strstr(m, escaped) != NULL, "the manifest holds the spool's native path");
        }
        printf("manifest %s\n", manifest);
    }
    tp_free(p);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
