/* The runtimes heapsnap knows (see runtime.h). */
#include "runtime.h"

#include <stddef.h>

const struct runtime *const known_runtimes[] = {&cpython_runtime, NULL};
