/* Numbers as the reports print them (see numbers.h). */
#include "numbers.h"

#include <stdio.h>

void format_count(uint64_t count, char *out, size_t out_size)
{
	char digits[32];
	int length = snprintf(digits, sizeof digits, "%llu", (unsigned long long)count);
	size_t at = 0;
	for (int i = 0; i < length && at + 2 < out_size; i++) {
		if (i > 0 && (length - i) % 3 == 0)
			out[at++] = ',';
		out[at++] = digits[i];
	}
	out[at] = '\0';
}
