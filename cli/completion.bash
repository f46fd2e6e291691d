# Bash completion for heapsnap and heapdiff: commands, each command's options (read from its own
# --help, so they never fall out of step), process ids for `capture` and `watch`, core files for `import`,
# snapshots (*.snap) for the rest, and the values of options that take a known set of them.
# Installed by meson into bash-completion's directory as `heapsnap` and `heapdiff`.

_heapsnap_options() { # PROGRAM [COMMAND]: the long and short options its --help lists
	"$@" --help 2>/dev/null | grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | tr -d ' ,' | sort -u
}

_heapsnap_values() { # OPTION PROGRAM [COMMAND]: the words it takes, when they are a known set
	# (the usage lines of --help show them: "[--format text|json]"; a word in capitals names
	# what it takes: a DIR, a FILE); 1 when it takes none
	local option=$1 shown
	shift
	local help
	help=$("$@" --help 2>/dev/null)
	shown=$(grep -oE "\[$option [A-Za-z|=]+\]" <<<"$help" | head -1)
	# an option the usage lines show by its short name: its line in the list of options
	[[ -n $shown ]] || shown=$(grep -oE "^  -[a-zA-Z], $option [A-Z]+" <<<"$help" | head -1)
	[[ -n $shown ]] || return 1
	shown=${shown##* }
	shown=${shown%]}
	case $shown in
	DIR) echo "__directory__" ;;
	FILE | OUT) echo "__file__" ;;
	*[A-Z]*) echo "" ;;
	*) echo "${shown//|/ }" ;;
	esac
}

_heapsnap_complete_words() { # CURRENT PREVIOUS PROGRAM [COMMAND] -- what to offer
	local current=$1 previous=$2
	shift 2
	local values
	if values=$(_heapsnap_values "$previous" "$@"); then
		case $values in
		__directory__) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$current")) ;;
		__file__) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$current")) ;;
		*) COMPREPLY=($(compgen -W "$values" -- "$current")) ;;
		esac
		return 0
	fi
	if [[ $current == -* ]]; then
		COMPREPLY=($(compgen -W "$(_heapsnap_options "$@")" -- "$current"))
		return 0
	fi
	return 1
}

_heapsnap() {
	local current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD - 1]}
	local program=${COMP_WORDS[0]}
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "$("$program" --help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p') --help --version" -- "$current"))
		return
	fi
	local command=${COMP_WORDS[1]}
	_heapsnap_complete_words "$current" "$previous" "$program" "$command" && return
	compopt -o filenames 2>/dev/null
	case $command in
	capture | watch) COMPREPLY=($(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$current")) ;;
	import) COMPREPLY=($(compgen -f -- "$current")) ;;
	*) COMPREPLY=($(compgen -d -- "$current") $(compgen -f -X '!*.snap' -- "$current")) ;;
	esac
}

_heapdiff() {
	local current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD - 1]}
	_heapsnap_complete_words "$current" "$previous" "${COMP_WORDS[0]}" && return
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -d -- "$current") $(compgen -f -X '!*.snap' -- "$current"))
}

complete -F _heapsnap heapsnap
complete -F _heapdiff heapdiff
