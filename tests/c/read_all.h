/* A whole file read into a NUL-terminated buffer (free it), or NULL. For the C test hosts. */
#ifndef TP_TEST_READ_ALL_H
#define TP_TEST_READ_ALL_H

#include <stdio.h>
#include <stdlib.h>

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

#endif
