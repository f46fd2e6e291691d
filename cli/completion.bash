# Bash completion for heapsnap and heapdiff: commands, each command's options (read from its own
# --help, so they never fall out of step), process ids for `capture`, core files for `import`,
# snapshots (*.snap) for the rest, and the values of options that take a known set of them.
# Installed by meson into bash-completion's directory as `heapsnap` and `heapdiff`.

_heapsnap_options() { # PROGRAM [COMMAND]: the long and short options its --help lists
	"$@" --help 2>/dev/null | grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | tr -d ' ,' | sort -u
}

_heapsnap_values() { # OPTION [COMMAND]: the words it takes, when they are a known set; 1 when it
	# takes none
	case $1 in
	--format) [[ $2 == export ]] && echo "devtools" || echo "text json jsonl markdown dot html" ;;
	--state) echo "live free all" ;;
	--sort) echo "bytes count" ;;
	--color) echo "auto always never" ;;
	--debug-dir | --sysroot) echo "__directory__" ;;
	-o | --output) echo "__file__" ;;
	--level | --threads | --top | --type | --min-bytes | --fail-on-growth) echo "" ;;
	*) return 1 ;;
	esac
}

_heapsnap_complete_words() { # CURRENT PREVIOUS PROGRAM [COMMAND] -- what to offer
	local current=$1 previous=$2
	shift 2
	local values
	if values=$(_heapsnap_values "$previous" "$2"); then
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
		COMPREPLY=($(compgen -W "capture import info list summary export --help --version" -- "$current"))
		return
	fi
	local command=${COMP_WORDS[1]}
	_heapsnap_complete_words "$current" "$previous" "$program" "$command" && return
	compopt -o filenames 2>/dev/null
	case $command in
	capture) COMPREPLY=($(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$current")) ;;
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
