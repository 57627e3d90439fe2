/* CHECK(cond, what): counts a passed or failed check, printing failures with their line. For the
 * C and C++ test hosts, which end with printf("%d passed, %d failed\n", passed, failed). */
#ifndef TP_TEST_CHECK_H
#define TP_TEST_CHECK_H

#include <stdio.h>

static int passed = 0, failed = 0;

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
        }                                                                  \
    } while (0)

#endif
