/* The trend test of `heapsnap watch` (analyze/reports/trend.c): Mann-Kendall's S, its variance
 * with the ties correction and the one-sided p-value against values worked out by hand from the
 * textbook formulas (Kendall 1975; Hipel and McLeod 1994, eq. 23.2-23.4); and the verdict: a
 * steady rise is a suspect, noise, a sawtooth that returns to its floor, a rise too small for the
 * margin and too few points are not; label values for the metrics (cli/openmetrics.c) stay valid
 * UTF-8, bounded and distinct. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/reports/trend.h"
#include "cli/openmetrics.h"
#include "test_util.h"

static bool near(double a, double b)
{
	return fabs(a - b) < 5e-4;
}

static void mann_kendall_by_hand(void)
{
	struct mann_kendall test;
	/* four rising values: S = 6 pairs, var = 4*3*13/18 = 8.6667, z = 5/2.9439 = 1.6984,
	   p = 1 - Phi(1.6984) = 0.04471 */
	mann_kendall((const double[]){1, 2, 3, 4}, 4, &test);
	CHECK(test.s == 6, "S %g", test.s);
	CHECK(near(test.variance, 8.6667), "variance %g", test.variance);
	CHECK(near(test.z, 1.6984), "z %g", test.z);
	CHECK(near(test.p_increasing, 0.04471), "p %g", test.p_increasing);
	/* a tie: 1 2 2 3: S = 5 (the tied pair counts 0), var = (156 - 2*1*9)/18 = 7.6667,
	   z = 4/2.7689 = 1.4446, p = 0.07428 */
	mann_kendall((const double[]){1, 2, 2, 3}, 4, &test);
	CHECK(test.s == 5, "S %g", test.s);
	CHECK(near(test.variance, 7.6667), "variance %g", test.variance);
	CHECK(near(test.p_increasing, 0.07428), "p %g", test.p_increasing);
	/* falling: S = -6, z = -1.6984, p = 0.95529 */
	mann_kendall((const double[]){4, 3, 2, 1}, 4, &test);
	CHECK(test.s == -6 && near(test.p_increasing, 0.95529), "S %g p %g", test.s,
	      test.p_increasing);
	/* all equal: no variance, z = 0, p = 0.5 */
	mann_kendall((const double[]){7, 7, 7, 7, 7}, 5, &test);
	CHECK(test.s == 0 && test.variance == 0 && near(test.p_increasing, 0.5), "p %g",
	      test.p_increasing);
}

/* A summary of one type, `objects` of 64 bytes each. */
static void add_capture(struct trends *trends, double hours, double objects)
{
	struct type_group group = {.type = "__main__.Connection",
				   .count = (uint64_t)objects,
				   .bytes = (uint64_t)objects * 64};
	struct heap_summary summary = {.types = &group, .type_count = 1};
	struct hs_error err;
	CHECK(trends_add(trends, hours, &summary, &err) == 0, "trends_add");
}

static bool judged_suspect(const double *series, size_t count, struct trend_verdict *verdict)
{
	struct trends trends;
	trends_init(&trends);
	for (size_t i = 0; i < count; i++)
		add_capture(&trends, (double)i / 60, series[i]);
	trend_judge(&trends, 0, verdict);
	trends_free(&trends);
	return verdict->suspect;
}

static void verdicts(void)
{
	struct trend_verdict verdict;
	/* 100 more objects a minute: a suspect, at 6,000 objects an hour */
	const double leak[] = {1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700};
	CHECK(judged_suspect(leak, 8, &verdict), "a steady rise");
	CHECK(near(verdict.objects_per_hour, 6000), "rate %g", verdict.objects_per_hour);
	CHECK(near(verdict.bytes_per_hour, 6000 * 64), "rate %g", verdict.bytes_per_hour);
	CHECK(!judged_suspect(leak, 3, &verdict), "three points are too few");
	/* a bounded cache: rises, is emptied back to its floor, rises again */
	const double sawtooth[] = {1000, 1300, 1600, 1000, 1300, 1600, 1000, 1300, 1000, 1300};
	CHECK(!judged_suspect(sawtooth, 10, &verdict), "a sawtooth, p %g",
	      verdict.objects.p_increasing);
	/* a sawtooth sampled at its top last still returned to its floor between: the test says
	   no trend */
	const double sawtooth_top[] = {1000, 1600, 1000, 1600, 1000, 1600, 1000, 1600};
	CHECK(!judged_suspect(sawtooth_top, 8, &verdict), "a sawtooth ending high, p %g",
	      verdict.objects.p_increasing);
	const double noise[] = {1000, 1003, 998, 1001, 999, 1004, 997, 1002, 1000, 1001};
	CHECK(!judged_suspect(noise, 10, &verdict), "noise");
	/* rising every time, but by 2 objects in 1000: below the margin */
	const double creep[] = {1000, 1000.5, 1001, 1001.5, 1002, 1002.5, 1003, 1003.5};
	CHECK(!judged_suspect(creep, 8, &verdict), "a rise within the margin");
	/* a type that appears mid-run counts 0 before */
	struct trends trends;
	trends_init(&trends);
	struct heap_summary empty = {0};
	struct hs_error err;
	CHECK(trends_add(&trends, 0, &empty, &err) == 0, "an empty capture");
	for (int i = 1; i < 8; i++)
		add_capture(&trends, i / 60.0, 100.0 * i);
	CHECK(trends.type_count == 1 && trends.types[0].objects[0] == 0, "new type from 0");
	trend_judge(&trends, 0, &verdict);
	CHECK(verdict.suspect, "a type that appeared and grew");
	trends_free(&trends);
}

/* The window slides: after TREND_WINDOW + 10 captures of a flat then rising series, only the
 * latest TREND_WINDOW count. */
static void window(void)
{
	struct trends trends;
	trends_init(&trends);
	for (int i = 0; i < TREND_WINDOW + 10; i++)
		add_capture(&trends, i / 60.0, i < 10 ? 5000 : 5000 + 100.0 * (i - 9));
	struct trend_verdict verdict;
	trend_judge(&trends, 0, &verdict);
	CHECK(trends.points == TREND_WINDOW && trends.captures == TREND_WINDOW + 10, "window");
	CHECK(verdict.objects_first == 5100, "first of the window %g", verdict.objects_first);
	CHECK(verdict.suspect, "rising over the window");
	trends_free(&trends);
}

/* With the graph, a summary has the unreachable apart: the trend and the metrics count both. */
static void unreachable_counted(void)
{
	struct type_group reachable[] = {{.type = "A", .count = 10, .bytes = 1000, .retained = 5},
					 {.type = "B", .count = 1, .bytes = 10}};
	struct type_group lost[] = {{.type = "A", .count = 5, .bytes = 500},
				    {.type = NULL, .size = 64, .count = 3, .bytes = 192}};
	struct heap_summary summary = {.types = reachable,
				       .type_count = 2,
				       .unreachable = lost,
				       .unreachable_count = 2};
	struct type_group *groups;
	size_t count;
	struct hs_error err;
	CHECK(live_type_groups(&summary, &groups, &count, &err) == 0, "merged");
	CHECK(count == 3, "A, size 64, B: %zu", count);
	CHECK(count == 3 && strcmp(groups[0].type, "A") == 0 && groups[0].count == 15 &&
		      groups[0].bytes == 1500 && groups[0].retained == 5,
	      "A reachable or not, largest first");
	CHECK(count == 3 && groups[1].type == NULL && groups[1].size == 64 && groups[2].count == 1,
	      "then size 64, then B");
	free(groups);
	struct trends trends;
	trends_init(&trends);
	CHECK(trends_add(&trends, 0, &summary, &err) == 0, "added");
	CHECK(trends.type_count == 3 && strcmp(trends.types[0].name, "A") == 0 &&
		      trends.types[0].objects[0] == 15,
	      "the trend of A counts its unreachable objects");
	trends_free(&trends);
}

static void label_values(void)
{
	char out[OPENMETRICS_LABEL_MAX + 1];
	openmetrics_label_value("__main__.Connection", out);
	CHECK(strcmp(out, "__main__.Connection") == 0, "%s", out);
	openmetrics_label_value("caf\xc3\xa9", out);
	CHECK(strcmp(out, "caf\xc3\xa9") == 0, "UTF-8 kept: %s", out);
	openmetrics_label_value("bad\xff\x01", out);
	CHECK(strncmp(out, "bad??~", 6) == 0 && strlen(out) == 14, "bad bytes: %s", out);
	char long_a[400], long_b[400], out_b[OPENMETRICS_LABEL_MAX + 1];
	memset(long_a, 'x', sizeof long_a);
	long_a[sizeof long_a - 1] = '\0';
	memcpy(long_b, long_a, sizeof long_b);
	long_b[sizeof long_b - 2] = 'y';
	openmetrics_label_value(long_a, out);
	openmetrics_label_value(long_b, out_b);
	CHECK(strlen(out) <= OPENMETRICS_LABEL_MAX && strcmp(out, out_b) != 0,
	      "long names cut and distinct: %s %s", out, out_b);
	/* cut inside a character: never half of one */
	char wide[400] = "";
	for (int i = 0; i < 100; i++)
		strcat(wide, "\xe2\x82\xac");
	openmetrics_label_value(wide, out);
	size_t kept = strcspn(out, "~");
	CHECK(kept % 3 == 0 && kept <= OPENMETRICS_LABEL_MAX, "cut at a character: %zu", kept);
}

int main(void)
{
	mann_kendall_by_hand();
	verdicts();
	window();
	unreachable_counted();
	label_values();
	return TEST_EXIT();
}
