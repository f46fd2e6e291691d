/* A minimal assertion helper for the C unit tests: each failed check prints where and what, and
 * the test's exit status is the number of failures (meson counts a non-zero status as a failure). */
#ifndef HEAPSNAP_TEST_UTIL_H
#define HEAPSNAP_TEST_UTIL_H

#include <stdio.h>

static int test_failures;

#define CHECK(condition, ...)                                                                 \
	do {                                                                                  \
		if (!(condition)) {                                                           \
			test_failures++;                                                      \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,      \
				#condition);                                                  \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
		}                                                                             \
	} while (0)

#define TEST_EXIT() (test_failures ? (fprintf(stderr, "%d checks failed\n", test_failures), 1) : 0)

#endif
