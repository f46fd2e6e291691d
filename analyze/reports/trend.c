/* Per-type trends across the captures of `heapsnap watch`, and the Mann-Kendall test that judges
 * them (trend.h). The test is rank-based: it asks only whether later values tend to be larger,
 * so one burst or one outlier moves it little, and it makes no assumption about the shape of the
 * growth. */
#include "analyze/reports/trend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_doubles(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;
	return a < b ? -1 : a > b;
}

/* The sum over groups of tied values of t(t-1)(2t+5), for the variance's correction. */
static double tie_correction(const double *values, size_t count)
{
	double sorted[TREND_WINDOW];
	size_t n = count < TREND_WINDOW ? count : TREND_WINDOW;
	memcpy(sorted, values, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, compare_doubles);
	double correction = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && sorted[j] == sorted[i])
			j++;
		double t = (double)(j - i);
		correction += t * (t - 1) * (2 * t + 5);
		i = j;
	}
	return correction;
}

void mann_kendall(const double *values, size_t count, struct mann_kendall *out)
{
	if (count > TREND_WINDOW)
		count = TREND_WINDOW;
	double s = 0;
	for (size_t i = 0; i + 1 < count; i++)
		for (size_t j = i + 1; j < count; j++)
			s += (values[j] > values[i]) - (values[j] < values[i]);
	double n = (double)count;
	double variance = (n * (n - 1) * (2 * n + 5) - tie_correction(values, count)) / 18;
	double z = 0;
	if (variance > 0 && s > 0)
		z = (s - 1) / sqrt(variance);
	else if (variance > 0 && s < 0)
		z = (s + 1) / sqrt(variance);
	*out = (struct mann_kendall){.s = s,
				     .variance = variance,
				     .z = z,
				     .p_increasing = 0.5 * erfc(z / sqrt(2.0))};
}

static int compare_group_bytes(const void *left, const void *right)
{
	const struct type_group *a = left, *b = right;
	return a->bytes != b->bytes ? (a->bytes > b->bytes ? -1 : 1) : 0;
}

int live_type_groups(const struct heap_summary *summary, struct type_group **groups,
		     size_t *count, struct hs_error *err)
{
	struct type_grouper merged = {0};
	const struct type_group *lists[] = {summary->types, summary->unreachable};
	size_t counts[] = {summary->type_count, summary->unreachable_count};
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < counts[l]; i++) {
			const struct type_group *from = &lists[l][i];
			struct type_group *into = type_grouper_find(&merged, from->type, from->size);
			if (into == NULL) {
				type_grouper_free(&merged);
				return hs_error_nomem(err, "the live allocations by type");
			}
			into->count += from->count;
			into->bytes += from->bytes;
			into->retained += from->retained;
		}
	*count = merged.count;
	*groups = malloc((merged.count + 1) * sizeof **groups);
	if (*groups)
		memcpy(*groups, merged.entries, merged.count * sizeof **groups);
	type_grouper_free(&merged);
	if (*groups == NULL)
		return hs_error_nomem(err, "the live allocations by type");
	qsort(*groups, *count, sizeof **groups, compare_group_bytes);
	return 0;
}

void trends_init(struct trends *trends)
{
	memset(trends, 0, sizeof *trends);
}

void trends_free(struct trends *trends)
{
	for (size_t i = 0; i < trends->type_count; i++)
		free(trends->types[i].name);
	free(trends->types);
	memset(trends, 0, sizeof *trends);
}

static int compare_name(const void *key, const void *element)
{
	return strcmp(key, ((const struct type_trend *)element)->name);
}

/* The trend of `name`, made (zero until now) when new; NULL when out of memory. */
static struct type_trend *trend_of(struct trends *trends, const char *name)
{
	size_t low = 0, high = trends->type_count;
	while (low < high) {
		size_t middle = (low + high) / 2;
		int order = compare_name(name, &trends->types[middle]);
		if (order == 0)
			return &trends->types[middle];
		if (order < 0)
			high = middle;
		else
			low = middle + 1;
	}
	if (trends->type_count == trends->type_capacity) {
		size_t capacity = trends->type_capacity ? 2 * trends->type_capacity : 64;
		struct type_trend *grown = realloc(trends->types, capacity * sizeof *grown);
		if (grown == NULL)
			return NULL;
		trends->types = grown;
		trends->type_capacity = capacity;
	}
	char *copy = strdup(name);
	if (copy == NULL)
		return NULL;
	memmove(&trends->types[low + 1], &trends->types[low],
		(trends->type_count - low) * sizeof *trends->types);
	trends->type_count++;
	struct type_trend *trend = &trends->types[low];
	memset(trend, 0, sizeof *trend);
	trend->name = copy;
	return trend;
}

/* Makes room for one more point: the oldest leaves a full window. */
static size_t next_point(struct trends *trends)
{
	if (trends->points < TREND_WINDOW)
		return trends->points++;
	size_t keep = TREND_WINDOW - 1;
	memmove(trends->hours, trends->hours + 1, keep * sizeof *trends->hours);
	for (size_t i = 0; i < trends->type_count; i++) {
		struct type_trend *trend = &trends->types[i];
		memmove(trend->objects, trend->objects + 1, keep * sizeof *trend->objects);
		memmove(trend->bytes, trend->bytes + 1, keep * sizeof *trend->bytes);
	}
	return keep;
}

int trends_add(struct trends *trends, double hours, const struct heap_summary *summary,
	       struct hs_error *err)
{
	size_t point = next_point(trends);
	trends->hours[point] = hours;
	trends->captures++;
	for (size_t i = 0; i < trends->type_count; i++)
		trends->types[i].objects[point] = trends->types[i].bytes[point] = 0;
	/* reachable or not (with the graph, the summary has them apart): a leak is memory that
	   grows, garbage no collector frees included */
	const struct type_group *lists[] = {summary->types, summary->unreachable};
	size_t counts[] = {summary->type_count, summary->unreachable_count};
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < counts[l]; i++) {
			char name[1024];
			type_group_name(&lists[l][i], name, sizeof name);
			struct type_trend *trend = trend_of(trends, name);
			if (trend == NULL)
				return hs_error_nomem(err, "the trend of type %s", name);
			/* (a type named alike by two groups adds up) */
			trend->objects[point] += (double)lists[l][i].count;
			trend->bytes[point] += (double)lists[l][i].bytes;
		}
	return 0;
}

/* Whether a series rose by the test and by the margin over its first value. */
static bool rising(const double *series, size_t points, const struct mann_kendall *test,
		   double minimum)
{
	double first = series[0], last = series[points - 1];
	double margin = fmax(first * TREND_MARGIN, minimum);
	return test->s > 0 && test->p_increasing < TREND_ALPHA && last - first >= margin;
}

void trend_judge(const struct trends *trends, size_t index, struct trend_verdict *verdict)
{
	const struct type_trend *trend = &trends->types[index];
	size_t points = trends->points;
	memset(verdict, 0, sizeof *verdict);
	verdict->points = points;
	if (points == 0)
		return;
	mann_kendall(trend->objects, points, &verdict->objects);
	mann_kendall(trend->bytes, points, &verdict->bytes);
	verdict->objects_first = trend->objects[0];
	verdict->objects_last = trend->objects[points - 1];
	verdict->bytes_first = trend->bytes[0];
	verdict->bytes_last = trend->bytes[points - 1];
	double elapsed = trends->hours[points - 1] - trends->hours[0];
	if (elapsed > 0) {
		verdict->objects_per_hour = (verdict->objects_last - verdict->objects_first) / elapsed;
		verdict->bytes_per_hour = (verdict->bytes_last - verdict->bytes_first) / elapsed;
	}
	verdict->suspect =
		points >= TREND_MIN_POINTS &&
		(rising(trend->objects, points, &verdict->objects, TREND_MIN_OBJECTS) ||
		 rising(trend->bytes, points, &verdict->bytes, TREND_MIN_BYTES));
}
