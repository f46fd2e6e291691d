/* jemalloc 5.3's size classes and slab sizes as the walker computes them (jemalloc_layout.c) must
 * be those Debian's libjemalloc2 reports through mallctl (arenas.bin.<i>.size and .slab_size,
 * arenas.lextent.<i>.size, read once from the library and written here), and past the table
 * the classes must keep jemalloc's shape: four per doubling, the last one below 2^63. */
#include <stdint.h>

#include "analyze/allocators/jemalloc_layout.h"
#include "test_util.h"

int main(void)
{
	/* mallctl arenas.bin.<i>.size and arenas.bin.<i>.slab_size / 4096 */
	static const struct {
		uint64_t size;
		unsigned pages;
	} bins[] = {
		{8, 1},	    {16, 1},	{32, 1},    {48, 3},	{64, 1},    {80, 5},	{96, 3},
		{112, 7},   {128, 1},	{160, 5},   {192, 3},	{224, 7},   {256, 1},	{320, 5},
		{384, 3},   {448, 7},	{512, 1},   {640, 5},	{768, 3},   {896, 7},	{1024, 1},
		{1280, 5},  {1536, 3},	{1792, 7},  {2048, 1},	{2560, 5},  {3072, 3},	{3584, 7},
		{4096, 1},  {5120, 5},	{6144, 3},  {7168, 7},	{8192, 2},  {10240, 5}, {12288, 3},
		{14336, 7},
	};
	/* mallctl arenas.lextent.<i>.size, at class index 36 + i */
	static const struct {
		unsigned index;
		uint64_t size;
	} large[] = {
		{36, 16384},
		{76, 16777216},
		{116, 17179869184ull},
		{156, 17592186044416ull},
		{196, 18014398509481984ull},
	};
	struct jemalloc_layout layout;
	jemalloc_layout_5_3(&layout);
	CHECK(layout.nbins == sizeof bins / sizeof bins[0], "%u small classes", layout.nbins);
	for (unsigned i = 0; i < sizeof bins / sizeof bins[0]; i++) {
		CHECK(jemalloc_size_class(i) == bins[i].size, "class %u: %llu, not %llu", i,
		      (unsigned long long)jemalloc_size_class(i), (unsigned long long)bins[i].size);
		CHECK(jemalloc_slab_pages(&layout, i) == bins[i].pages, "class %u: slab of %u pages, not %u",
		      i, jemalloc_slab_pages(&layout, i), bins[i].pages);
	}
	for (unsigned i = 0; i < sizeof large / sizeof large[0]; i++)
		CHECK(jemalloc_size_class(large[i].index) == large[i].size, "class %u: %llu, not %llu",
		      large[i].index, (unsigned long long)jemalloc_size_class(large[i].index),
		      (unsigned long long)large[i].size);
	CHECK(jemalloc_slab_pages(&layout, layout.nbins) == 0, "no slab for a large class");
	for (unsigned i = 1; i < layout.nsizes; i++)
		CHECK(jemalloc_size_class(i) > jemalloc_size_class(i - 1), "classes grow at %u", i);
	CHECK(jemalloc_size_class(layout.nsizes - 1) < (1ull << 63) &&
		      jemalloc_size_class(layout.nsizes) == 0,
	      "%u classes in all, the last %llu", layout.nsizes,
	      (unsigned long long)jemalloc_size_class(layout.nsizes - 1));
	return TEST_EXIT();
}
