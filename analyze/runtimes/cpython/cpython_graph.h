/* CPython's model for the object graph: the precise edges of Python objects, with labels (list and
 * tuple items as `[*]`, dict values as `['key']` in small dicts and `[*]` in big ones, set members
 * as `{*}`, instance attributes as `.name` wherever CPython keeps them: a `__dict__`, the managed
 * dict or its values (3.11, 3.12), inline values (3.13), `__slots__`), and the roots Python code
 * knows: module globals (`module __main__._CONNECTIONS`), class attributes
 * (`class __main__.Connection.registry`) and, from 3.12, immortal objects. A subclass of a
 * built-in container (in C or in Python) has the container's edges; the words of a type's own
 * fields past its built-in base's struct (a C type's struct, slots) are references where they
 * point at an object's start, named by `tp_members` or by their offset (`itertools.repeat+16`),
 * their dict and weak reference list apart; C containers with items outside their struct have
 * models: a deque's blocks (`collections.deque[*]`), an OrderedDict's nodes, lru_cache's cache
 * (`functools._lru_cache_wrapper.cache`) and list elements (whose links are borrowed but for the
 * one reference the list holds). Weak references are never edges. */
#ifndef HEAPSNAP_CPYTHON_GRAPH_H
#define HEAPSNAP_CPYTHON_GRAPH_H

#include "analyze/address_space.h"
#include "analyze/runtimes/cpython/cpython.h"
#include "analyze/runtimes/cpython/cpython_objects.h"
#include "analyze/graph/graph.h"
#include "analyze/heap.h"

struct cpython_graph;

/* The model for the Python objects found in `heap` (NULL when out of memory); it lives until
 * cpython_graph_free and reads the snapshot while the graph is built. */
/* `fields` names the C types' fields (cpython_fields.h; the model frees it with itself, and it
 * may be NULL). */
struct cpython_fields;
struct cpython_graph *cpython_graph_new(struct address_space *space,
					const struct cpython_info *python,
					const struct python_objects *objects, const struct heap *heap,
					struct cpython_fields *fields, struct graph_model *model);
void cpython_graph_free(struct cpython_graph *model);

#endif
