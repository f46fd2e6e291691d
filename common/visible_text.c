/* Control characters made visible (see visible_text.h). */
#include "visible_text.h"

#include <stdio.h>
#include <string.h>

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool has_control_characters(const char *text)
{
	for (; *text; text++)
		if (is_control((unsigned char)*text))
			return true;
	return false;
}

char *visible_text(const char *text, char *out, size_t out_size)
{
	size_t at = 0;
	if (out_size == 0)
		return out;
	for (; *text; text++) {
		unsigned char c = (unsigned char)*text;
		char escape[8];
		size_t length = 1;
		if (!is_control(c)) {
			escape[0] = (char)c;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			escape[0] = '\\';
			escape[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			length = 2;
		} else {
			length = (size_t)snprintf(escape, sizeof escape, "\\x%02x", c);
		}
		if (at + length >= out_size)
			break;
		memcpy(out + at, escape, length);
		at += length;
	}
	out[at] = '\0';
	return out;
}
