/* The retaining-path pictures (cli/path_graph.c): the exact mermaid and DOT of a small graph
 * (shared steps, a type reached two ways, counts summed); labels that would break either syntax
 * (quotes, brackets, <, >, |, #, &, backslashes, control characters, bytes that are not UTF-8,
 * a label of 127 control characters, the longest spelling) come out escaped, ASCII and whole;
 * ids stay unique through thousands of nodes (the tables growing). The e2e test test_pictures.py
 * has the real parsers read what heapdiff writes. */
#include <stdlib.h>
#include <string.h>

#include "cli/path_graph.h"
#include "test_util.h"

static void shape(struct path_shape *out, uint64_t count, size_t n, const char *const *elements)
{
	memset(out, 0, sizeof *out);
	for (size_t e = 0; e < n; e++)
		snprintf(out->elements[e], sizeof out->elements[e], "%s", elements[e]);
	out->element_count = n;
	out->count = count;
}

static char *render(const struct path_graph *graph, enum path_graph_syntax syntax)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	path_graph_write(out, graph, syntax, "g");
	fclose(out);
	return text;
}

static bool ascii(const char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text >= 0x80 || ((unsigned char)*text < 0x20 && *text != '\n'))
			return false;
	return true;
}

static void small_graph(void)
{
	struct path_graph *graph = path_graph_new();
	struct path_shape s;
	shape(&s, 1000, 3, (const char *const[]){"module m.L", "list[*]", "m.Conn"});
	CHECK(path_graph_add(graph, &s) == 0, "add");
	shape(&s, 1000, 4, (const char *const[]){"module m.L", "list[*]", "m.Conn.h", "m.H"});
	CHECK(path_graph_add(graph, &s) == 0, "add");
	shape(&s, 5, 2, (const char *const[]){"global g", "m.Conn"});
	CHECK(path_graph_add(graph, &s) == 0, "add");
	shape(&s, 7, 1, (const char *const[]){"m.Root"});
	CHECK(path_graph_add(graph, &s) == 0, "add");
	char *mermaid = render(graph, PATH_GRAPH_MERMAID);
	const char *want_mermaid = "flowchart LR\n"
				   "  root1[[\"module m.L\"]]\n"
				   "  step1[\"list[*]\"]\n"
				   "  type1([\"m.Conn\"])\n"
				   "  step2[\"m.Conn.h\"]\n"
				   "  type2([\"m.H\"])\n"
				   "  root2[[\"global g\"]]\n"
				   "  type3([\"m.Root\"])\n"
				   "  root1 -->|\"2,000\"| step1\n"
				   "  step1 -->|\"1,000\"| type1\n"
				   "  step1 -->|\"1,000\"| step2\n"
				   "  step2 -->|\"1,000\"| type2\n"
				   "  root2 -->|\"5\"| type1\n";
	CHECK(strcmp(mermaid, want_mermaid) == 0, "mermaid:\n%s", mermaid);
	char *dot = render(graph, PATH_GRAPH_DOT);
	CHECK(strncmp(dot, "digraph g {\n", 12) == 0 && strstr(dot, "}\n") &&
		      strstr(dot, "  root1 [shape=box, style=bold, label=\"module m.L\"];\n") &&
		      strstr(dot, "  root2 -> type1 [label=\"5\"];\n") &&
		      strstr(dot, "  root1 -> step1 [label=\"2,000\"];\n"),
	      "dot:\n%s", dot);
	free(mermaid);
	free(dot);
	path_graph_free(graph);
}

static void odd_labels(void)
{
	struct path_graph *graph = path_graph_new();
	struct path_shape s;
	char controls[128];
	memset(controls, 1, 127);
	controls[127] = '\0';
	shape(&s, 3, 4,
	      (const char *const[]){"dict['a\"b']\n", "<lambda>|#quot;&amp;\\N`x`", controls,
				    "bad \xff \xe2\x82 \xc0\xaf \xed\xa0\x80 caf\xc3\xa9 \xe2\x82\xac"});
	CHECK(path_graph_add(graph, &s) == 0, "add");
	char *mermaid = render(graph, PATH_GRAPH_MERMAID);
	char *dot = render(graph, PATH_GRAPH_DOT);
	CHECK(ascii(mermaid) && ascii(dot), "ASCII:\n%s\n%s", mermaid, dot);
	CHECK(strstr(mermaid, "root1[[\"dict['a#quot;b']#92;n\"]]\n"), "mermaid quote:\n%s", mermaid);
	CHECK(strstr(mermaid, "step1[\"#60;lambda#62;#124;#35;quot#59;#38;amp#59;#92;N#96;x#96;\"]"),
	      "mermaid <>|#&\\`:\n%s", mermaid);
	CHECK(strstr(mermaid, "bad #92;xff #92;xe2#92;x82 #92;xc0#92;xaf #92;xed#92;xa0#92;x80 caf#233; "
			      "#8364;\"])"),
	      "mermaid, bytes not UTF-8 shown as \\xNN:\n%s", mermaid);
	CHECK(strstr(dot, "label=\"dict['a\\\"b']\\\\n\"") &&
		      strstr(dot, "label=\"&#60;lambda&#62;&#124;&#35;quot&#59;&#38;amp&#59;\\\\N&#96;x&#96;\"") &&
		      strstr(dot, "caf&#233; &#8364;\""),
	      "dot escapes:\n%s", dot);
	/* the 127 control characters, each as \x01 spelled #92;x01: nothing cut */
	char want[128 * 8] = "step2[\"";
	for (int i = 0; i < 127; i++)
		strcat(want, "#92;x01");
	strcat(want, "\"]\n");
	CHECK(strstr(mermaid, want), "the longest label whole:\n%s", mermaid);
	free(mermaid);
	free(dot);
	path_graph_free(graph);
}

static void many_nodes(void)
{
	struct path_graph *graph = path_graph_new();
	struct path_shape s;
	for (int i = 0; i < 5000; i++) {
		char root[32], type[32];
		snprintf(root, sizeof root, "global r%d", i);
		snprintf(type, sizeof type, "t%d", i % 7);
		shape(&s, 1, 3, (const char *const[]){root, "list[*]", type});
		CHECK(path_graph_add(graph, &s) == 0, "add %d", i);
	}
	char *dot = render(graph, PATH_GRAPH_DOT);
	CHECK(strstr(dot, "  root5000 [") && !strstr(dot, "root5001") && strstr(dot, "  step5000 [") &&
		      strstr(dot, "  type7 [") && !strstr(dot, "type8") &&
		      strstr(dot, "  step5000 -> type") && !strstr(dot, "label=\"2\""),
	      "5,000 roots, each with its own step, 7 types, every edge 1");
	free(dot);
	path_graph_free(graph);
}

int main(void)
{
	small_graph();
	odd_labels();
	many_nodes();
	return TEST_EXIT();
}
