/* heapsnap's in-process hook, libheapsnap.so: snapshots of a process written by the process
 * itself, for hosts where ptrace is forbidden. Preload it (LD_PRELOAD=libheapsnap.so) with
 * HEAPSNAP_SIGNAL=USR2 and every SIGUSR2 writes a snapshot into HEAPSNAP_DIR (default: the working
 * directory), or link it and call heapsnap_capture(). The process forks; the fork writes the
 * snapshot, in the format `heapsnap capture` writes, and exits; the process is paused only while
 * its threads save their registers and the fork is made. */
#ifndef HEAPSNAP_H
#define HEAPSNAP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a snapshot of the calling process to `path` (NULL: heapsnap-PID-TIME.snap in
 * HEAPSNAP_DIR or the working directory) and waits until it is written. Returns 0, or -1 with
 * errno set (EBUSY: a snapshot is being written already; EIO: the fork could not write it, and
 * said why on standard error; ENOTSUP: the program defines malloc itself, which the fork could
 * not avoid calling). */
int heapsnap_capture(const char *path);

#ifdef __cplusplus
}
#endif

#endif
