/* Command-line options as tables, in the manner of git's parse-options: each command declares
 * one table of its options (what each takes, where its value goes, its help) and one
 * description of itself, and cli_parse_options parses its arguments and writes its --help from
 * them. The man pages (scripts/make_manpage) and bash completion (cli/completion.bash) read
 * --help, so all four stay in step with the table. */
#ifndef HEAPSNAP_OPTIONS_H
#define HEAPSNAP_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

enum cli_option_kind {
	CLI_OPTION_END,
	CLI_OPTION_FLAG,     /* no value: *(bool *)value = true */
	CLI_OPTION_STRING,   /* *(const char **)value = the argument */
	CLI_OPTION_INT,	     /* *(int *)value = the argument, a whole number in [min, max] */
	CLI_OPTION_CHOICE,   /* *(int *)value = the value of the choice the argument names */
	CLI_OPTION_CALLBACK, /* parse(value, argument), false when the argument is bad */
	CLI_OPTION_ACTION,   /* no value: act(value) prints what the option asks and the
				command ends with exit status 0 (--version) */
};

/* One of the words a CLI_OPTION_CHOICE takes, and what it stores. */
struct cli_choice {
	const char *name;
	int value;
};

struct cli_option {
	enum cli_option_kind kind;
	char short_name; /* 0: none */
	const char *long_name;
	const char *argument; /* the argument's name in --help ("FILE", "N"); NULL for none */
	void *value;
	/* what it does, in --help: one line, or several separated by '\n' */
	const char *help;
	const struct cli_choice *choices; /* CHOICE: ended by a NULL name */
	long long min, max;		  /* INT */
	/* CALLBACK: parses the argument into value; `takes` names what it takes in the error
	   ("a size (4096, 64K, 10MiB)") */
	bool (*parse)(void *value, const char *argument);
	const char *takes;
	void (*act)(void *value); /* ACTION */
	bool hidden;		  /* accepted (an alternative spelling) but not in --help */
};

#define CLI_FLAG(s, l, v, h)                                                                  \
	{.kind = CLI_OPTION_FLAG, .short_name = (s), .long_name = (l), .value = (v), .help = (h)}
#define CLI_STRING(s, l, a, v, h)                                                             \
	{.kind = CLI_OPTION_STRING, .short_name = (s), .long_name = (l), .argument = (a),     \
	 .value = (v), .help = (h)}
#define CLI_INT(l, a, v, lo, hi, h)                                                           \
	{.kind = CLI_OPTION_INT, .long_name = (l), .argument = (a), .value = (v), .help = (h), \
	 .min = (lo), .max = (hi)}
#define CLI_CHOICE(l, a, v, c, h)                                                             \
	{.kind = CLI_OPTION_CHOICE, .long_name = (l), .argument = (a), .value = (v),          \
	 .help = (h), .choices = (c)}
#define CLI_CALLBACK(l, a, v, p, t, h)                                                        \
	{.kind = CLI_OPTION_CALLBACK, .long_name = (l), .argument = (a), .value = (v),        \
	 .help = (h), .parse = (p), .takes = (t)}
#define CLI_END {.kind = CLI_OPTION_END}

/* What a command is, for its --help and for `heapsnap --help`. */
struct cli_command_help {
	const char *program;   /* "heapsnap" or "heapdiff" */
	const char *name;      /* "capture"; "" for a program that is one command (heapdiff) */
	const char *arguments; /* "PID"; several forms separated by '\n' */
	const char *about;     /* what it does, the paragraphs before the options */
	const char *epilogue;  /* after the options (the exit status, the environment); or NULL */
	/* how many operands it takes (0: the command counts them), and the usage error otherwise
	   ("expects one FILE") */
	int operands;
	const char *expects;
};

/* Parses argv[1..argc) by `options`; --help (and -h) is every command's. Returns -1 when the
 * command is to go on, with *first the index of its first operand (what is not an option), of
 * which there are help->operands when it says;
 * otherwise the exit status the command ends with: EXIT_OK after --help or an action,
 * EXIT_ERROR after a usage error (printed, with a pointer to --help). */
#define CLI_PARSED (-1)
int cli_parse_options(const struct cli_command_help *help, const struct cli_option *options,
		      int argc, char **argv, int *first);

/* Writes the --help text of a command: the usage lines (every option shown, with the words a
 * choice takes, "--format text|json"), what it does, its options, the epilogue. */
void cli_write_help(FILE *out, const struct cli_command_help *help,
		    const struct cli_option *options);

#endif
