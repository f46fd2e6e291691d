/* Opening a file named by a snapshot (a module, its debug file). The snapshot may come from another
 * machine or an untrusted hand, and the path may now name a FIFO (open would block forever), a
 * device (opening it can have effects) or a directory: only regular files are opened. */
#ifndef HEAPSNAP_OPEN_FILE_H
#define HEAPSNAP_OPEN_FILE_H

/* A read-only descriptor of the regular file at `path`, opened without blocking; -1 with errno
 * set when it cannot be opened, EISDIR for a directory, and EINVAL for anything else that is not
 * a regular file (a FIFO, a device, a socket). */
int open_regular_file(const char *path);

/* What open_regular_file's errno means, for a message: strerror, but "not a regular file" for
 * EINVAL. */
const char *open_regular_file_reason(int errnum);

#endif
