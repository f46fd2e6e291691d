/* Retaining paths as a picture: the shapes of several types' paths merged into one graph, roots
 * on the left, the types on the right, written as a mermaid flowchart (markdown reports: GitHub
 * renders it) or as Graphviz DOT. One walk builds the graph; each syntax only spells it.
 *
 * The graph: a root node per distinct root (a path's first element); a step node per distinct
 * prefix of steps after a root (two paths share a step node while they agree from the root on), so
 * `list[*]` under two different roots are two nodes; a type node per distinct last element (the
 * grown type), where the paths of that type meet. An edge joins consecutive elements; its count
 * is the number of objects whose paths (the shapes added) take it. Labels are the elements' text
 * as given (a report passes them masked unless --show-values), escaped for each syntax. Node ids
 * are the kind and the order of first appearance (root1, step3, type2): stable for one report,
 * unique by construction. */
#ifndef HEAPSNAP_PATH_GRAPH_H
#define HEAPSNAP_PATH_GRAPH_H

#include <stdio.h>

#include "analyze/graph/paths.h"

enum path_graph_syntax { PATH_GRAPH_MERMAID, PATH_GRAPH_DOT };

struct path_graph;

/* NULL when out of memory. */
struct path_graph *path_graph_new(void);
void path_graph_free(struct path_graph *graph);

/* Adds one shape's path, weighted by its count. -1 when out of memory (the graph keeps what it
 * had). */
int path_graph_add(struct path_graph *graph, const struct path_shape *shape);

/* Whether any path was added. */
bool path_graph_empty(const struct path_graph *graph);

/* The graph in `syntax`: a whole mermaid flowchart (without the markdown fence) or a whole DOT
 * digraph named `name` (an identifier). */
void path_graph_write(FILE *out, const struct path_graph *graph, enum path_graph_syntax syntax,
		      const char *name);

#endif
