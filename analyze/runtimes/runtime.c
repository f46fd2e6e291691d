/* The runtimes heapsnap knows (see runtime.h). */
#include "runtime.h"

#include <stddef.h>

#include "analyze/analysis.h"

const struct runtime *const known_runtimes[] = {&cpython_runtime, NULL};

bool runtime_has_objects(const struct analysis *analysis)
{
	return analysis->runtime && analysis->runtime->object_count(analysis) > 0;
}
