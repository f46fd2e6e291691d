/* Text read from a process (type names, dict keys, thread names) made safe to show: a class named
 * with terminal escapes or a newline must not clear a reader's screen or forge a line of a
 * report. Control characters become visible escapes ("\x1b", "\n"); everything else, UTF-8
 * included, is kept. Done where such text enters the analysis's names, so every format shows
 * the same name. */
#ifndef HEAPSNAP_VISIBLE_TEXT_H
#define HEAPSNAP_VISIBLE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Whether `text` holds a control character (below 0x20, or 0x7f). */
bool has_control_characters(const char *text);

/* `text` with its control characters escaped, into `out` (cut at out_size, never inside an
 * escape); returns out. */
char *visible_text(const char *text, char *out, size_t out_size);

#endif
