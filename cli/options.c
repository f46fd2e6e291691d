/* Parsing a command's arguments and writing its --help from its table of options (options.h). */
#include "cli/options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define HELP_COLUMN 21	/* where an option's help starts */
#define USAGE_WIDTH 96	/* where the usage lines wrap */
#define OPTIONS_MAX 64

static const struct cli_option help_option =
	CLI_FLAG('h', "help", NULL, "print this help");

static size_t option_count(const struct cli_option *options)
{
	size_t count = 0;
	while (options[count].kind != CLI_OPTION_END)
		count++;
	return count;
}

/* "a, b or c": the words a choice takes */
static void choice_words(const struct cli_choice *choices, const char *between, const char *last,
			 char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; choices[i].name && used < size; i++) {
		const char *joint = i == 0 ? "" : choices[i + 1].name ? between : last;
		int written = snprintf(out + used, size - used, "%s%s", joint, choices[i].name);
		if (written < 0)
			break;
		used += (size_t)written;
	}
}

/* The command's name in messages: "capture", or "" for heapdiff (cli_usage_error's form) */
static int bad_value(const struct cli_command_help *help, const struct cli_option *option,
		     const char *argument)
{
	char takes[256];
	if (option->kind == CLI_OPTION_CHOICE)
		choice_words(option->choices, ", ", " or ", takes, sizeof takes);
	else if (option->kind == CLI_OPTION_INT)
		snprintf(takes, sizeof takes, "%lld to %lld", option->min, option->max);
	else
		snprintf(takes, sizeof takes, "%s", option->takes ? option->takes : "another value");
	return cli_usage_error(help->name, "--%s takes %s, not '%s'", option->long_name, takes,
			       argument);
}

/* Stores an option's argument; CLI_PARSED, or the exit status. */
static int take(const struct cli_command_help *help, const struct cli_option *option,
		const struct cli_option *options, const char *argument)
{
	long long number;
	switch (option->kind) {
	case CLI_OPTION_FLAG:
		if (option == &help_option) {
			cli_write_help(stdout, help, options);
			return EXIT_OK;
		}
		*(bool *)option->value = true;
		return CLI_PARSED;
	case CLI_OPTION_STRING:
		*(const char **)option->value = argument;
		return CLI_PARSED;
	case CLI_OPTION_INT:
		if (!cli_parse_int(argument, option->min, option->max, &number))
			return bad_value(help, option, argument);
		*(int *)option->value = (int)number;
		return CLI_PARSED;
	case CLI_OPTION_CHOICE:
		for (size_t i = 0; option->choices[i].name; i++)
			if (strcmp(option->choices[i].name, argument) == 0) {
				*(int *)option->value = option->choices[i].value;
				return CLI_PARSED;
			}
		return bad_value(help, option, argument);
	case CLI_OPTION_CALLBACK:
		return option->parse(option->value, argument) ? CLI_PARSED
							      : bad_value(help, option, argument);
	case CLI_OPTION_ACTION:
		option->act(option->value);
		return EXIT_OK;
	case CLI_OPTION_END:
		break;
	}
	return cli_usage_error(help->name, "bad option");
}

int cli_parse_options(const struct cli_command_help *help, const struct cli_option *options,
		      int argc, char **argv, int *first)
{
	size_t count = option_count(options);
	if (count + 1 > OPTIONS_MAX)
		return cli_usage_error(help->name, "too many options in its table");
	const struct cli_option *all[OPTIONS_MAX];
	struct option long_options[OPTIONS_MAX + 1];
	char short_options[2 * OPTIONS_MAX + 2] = ":";
	size_t short_used = 1;
	for (size_t i = 0; i <= count; i++) {
		all[i] = i < count ? &options[i] : &help_option;
		bool has_argument = all[i]->kind != CLI_OPTION_FLAG && all[i]->kind != CLI_OPTION_ACTION;
		long_options[i] = (struct option){all[i]->long_name,
						  has_argument ? required_argument : no_argument, NULL,
						  (int)(256 + i)};
		if (all[i]->short_name) {
			short_options[short_used++] = all[i]->short_name;
			if (has_argument)
				short_options[short_used++] = ':';
		}
	}
	short_options[short_used] = '\0';
	long_options[count + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	opterr = 0; /* its messages are ours, below */
	int option, index;
	while ((option = getopt_long(argc, argv, short_options, long_options, &index)) != -1) {
		const struct cli_option *found = NULL;
		if (option >= 256)
			found = all[option - 256];
		for (size_t i = 0; found == NULL && option > 0 && option < 256 && i <= count; i++)
			if (all[i]->short_name == option)
				found = all[i];
		if (option == ':')
			return cli_usage_error(help->name, "%s needs a value", argv[optind - 1]);
		if (found == NULL)
			return cli_usage_error(help->name, "unknown option '%s'", argv[optind - 1]);
		int status = take(help, found, options, optarg);
		if (status != CLI_PARSED)
			return status;
	}
	if (help->operands && argc - optind != help->operands)
		return cli_usage_error(help->name, "%s", help->expects);
	*first = optind;
	return CLI_PARSED;
}

/* ---- --help ---------------------------------------------------------------------------------- */

/* Appends one word of the usage lines, wrapping where the line would pass USAGE_WIDTH. */
static void usage_word(FILE *out, const char *word, size_t *column, size_t indent)
{
	size_t length = strlen(word);
	if (*column + 1 + length > USAGE_WIDTH) {
		fprintf(out, "\n%*s", (int)indent, "");
		*column = indent;
	} else {
		fputc(' ', out);
		(*column)++;
	}
	fputs(word, out);
	*column += length;
}

static void option_argument(const struct cli_option *option, char *out, size_t size)
{
	if (option->kind == CLI_OPTION_CHOICE)
		choice_words(option->choices, "|", "|", out, size);
	else
		snprintf(out, size, "%s", option->argument ? option->argument : "");
}

void cli_write_help(FILE *out, const struct cli_command_help *help,
		    const struct cli_option *options)
{
	char start[64];
	snprintf(start, sizeof start, "%s%s%s", help->program, help->name[0] ? " " : "",
		 help->name);
	const char *form = help->arguments;
	for (int line = 0; form; line++) {
		const char *end = strchr(form, '\n');
		int length = end ? (int)(end - form) : (int)strlen(form);
		fprintf(out, "%s%s %.*s", line ? "       " : "usage: ", start, length, form);
		size_t column = 7 + strlen(start) + 1 + (size_t)length;
		size_t indent = 7 + strlen(start) + 1;
		if (line > 0) {
			usage_word(out, "[OPTIONS]", &column, indent);
		} else {
			for (size_t i = 0; options[i].kind != CLI_OPTION_END; i++) {
				if (options[i].hidden)
					continue;
				char argument[128], word[192];
				option_argument(&options[i], argument, sizeof argument);
				if (options[i].short_name)
					snprintf(word, sizeof word, "[-%c%s%s]", options[i].short_name,
						 argument[0] ? " " : "", argument);
				else
					snprintf(word, sizeof word, "[--%s%s%s]", options[i].long_name,
						 argument[0] ? " " : "", argument);
				usage_word(out, word, &column, indent);
			}
		}
		fputc('\n', out);
		form = end ? end + 1 : NULL;
	}
	if (help->about)
		fprintf(out, "\n%s", help->about);
	fputc('\n', out);
	for (size_t i = 0;; i++) {
		const struct cli_option *option =
			options[i].kind == CLI_OPTION_END ? &help_option : &options[i];
		if (!option->hidden) {
			char left[160];
			const char *argument = option->argument ? option->argument : "";
			const char *gap = argument[0] ? " " : "";
			int used = option->short_name
					   ? snprintf(left, sizeof left, "  -%c, --%s%s%s",
						      option->short_name, option->long_name, gap, argument)
					   : snprintf(left, sizeof left, "  --%s%s%s", option->long_name,
						      gap, argument);
			const char *shown = left;
			if (used + 2 > HELP_COLUMN)
				fprintf(out, "%s\n%*s", shown, HELP_COLUMN, "");
			else
				fprintf(out, "%-*s", HELP_COLUMN, shown);
			for (const char *text = option->help; text;) {
				const char *end = strchr(text, '\n');
				fprintf(out, "%.*s\n", end ? (int)(end - text) : (int)strlen(text), text);
				text = end ? end + 1 : NULL;
				if (text)
					fprintf(out, "%*s", HELP_COLUMN, "");
			}
		}
		if (option == &help_option)
			break;
	}
	if (help->epilogue)
		fprintf(out, "\n%s", help->epilogue);
}
