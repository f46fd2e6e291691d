/* The option tables (cli/options.h): each kind of option parsed into its value, bad values and
 * unknown options refused with exit status 2, --help written from the table (its usage lines
 * show the words a choice takes, which bash completion reads). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "test_util.h"

static bool parse_even(void *value, const char *text)
{
	int number = atoi(text);
	*(int *)value = number;
	return number % 2 == 0;
}

static const struct cli_choice colours[] = {{"red", 1}, {"green", 2}, {NULL, 0}};
static const struct cli_command_help help = {
	.program = "heapsnap", .name = "test", .arguments = "FILE", .about = "About it.\n"};

struct values {
	bool flag;
	const char *output;
	int level, colour, even;
};

static int parse(struct values *values, int *first, int argc, char **argv)
{
	const struct cli_option options[] = {
		CLI_FLAG('f', "flag", &values->flag, "a flag"),
		CLI_STRING('o', "output", "FILE", &values->output, "where\nover two lines"),
		CLI_INT("level", "N", &values->level, 1, 19, "a level"),
		CLI_CHOICE("colour", "C", &values->colour, colours, "a colour"),
		CLI_CALLBACK("even", "N", &values->even, parse_even, "an even number", "even"),
		CLI_END};
	return cli_parse_options(&help, options, argc, argv, first);
}

int main(void)
{
	struct values values = {0};
	int first = 0;
	char *good[] = {"test",	 "-f", "--output=x.snap", "--level", "7", "--colour", "green",
			"--even", "4",	"a.snap", NULL};
	CHECK(parse(&values, &first, 10, good) == CLI_PARSED, "a good command line is parsed");
	CHECK(values.flag && values.output && strcmp(values.output, "x.snap") == 0 &&
		      values.level == 7 && values.colour == 2 && values.even == 4,
	      "every value is stored: %d %s %d %d %d", values.flag, values.output, values.level,
	      values.colour, values.even);
	CHECK(first == 9 && strcmp(good[first], "a.snap") == 0, "the operand follows: %d", first);

	char *bad_int[] = {"test", "--level", "20", NULL};
	char *bad_choice[] = {"test", "--colour", "blue", NULL};
	char *bad_callback[] = {"test", "--even", "3", NULL};
	char *unknown[] = {"test", "--nothing", NULL};
	char *missing[] = {"test", "--level", NULL};
	CHECK(parse(&values, &first, 3, bad_int) == EXIT_ERROR, "a level out of range");
	CHECK(parse(&values, &first, 3, bad_choice) == EXIT_ERROR, "a colour not offered");
	CHECK(parse(&values, &first, 3, bad_callback) == EXIT_ERROR, "an odd number");
	CHECK(parse(&values, &first, 2, unknown) == EXIT_ERROR, "an unknown option");
	CHECK(parse(&values, &first, 2, missing) == EXIT_ERROR, "an option without its value");

	const struct cli_option options[] = {
		CLI_STRING('o', "output", "FILE", NULL, "where\nover two lines"),
		CLI_CHOICE("colour", "C", NULL, colours, "a colour"), CLI_END};
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	cli_write_help(out, &help, options);
	fclose(out);
	CHECK(strstr(text, "usage: heapsnap test FILE [-o FILE] [--colour red|green]\n") == text,
	      "the usage line shows each option and a choice's words:\n%s", text);
	CHECK(strstr(text, "\nAbout it.\n") != NULL, "what it does follows");
	CHECK(strstr(text, "  -o, --output FILE  where\n                     over two lines\n") !=
		      NULL,
	      "an option's help, its lines aligned:\n%s", text);
	CHECK(strstr(text, "  -h, --help         print this help\n") != NULL, "--help is listed");
	free(text);
	return TEST_EXIT();
}
