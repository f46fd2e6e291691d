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

void format_bytes(uint64_t bytes, char *out, size_t out_size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	if (bytes < 1024) {
		snprintf(out, out_size, "%llu B", (unsigned long long)bytes);
		return;
	}
	double value = (double)bytes / 1024;
	size_t unit = 0;
	while (value >= 1024 && unit + 1 < sizeof units / sizeof units[0]) {
		value /= 1024;
		unit++;
	}
	snprintf(out, out_size, value < 10 ? "%.2f %s" : value < 100 ? "%.1f %s" : "%.0f %s", value,
		 units[unit]);
}
