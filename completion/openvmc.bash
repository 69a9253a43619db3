# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for vmcctl, openvmc, openvmcd, openvmc-hvd and vmc-run.
#
# Commands and options are read from the programs' own --help at the
# moment of completion (`vmcctl --help`, `vmcctl hv --help`, `vmcctl hv
# send --help`...), so they follow the programs. Only the values of three
# kinds of argument live here, LEVEL, SPEC and FMT; tests/completion_test.sh
# checks them against --help. Installed once per program name in
# bash-completion's folder; `source` it to try it from the source tree.

_ovmc_levels="error warn info debug trace"
_ovmc_backends="echo router exec: socket: socket:tcp: replay:"
_ovmc_formats="auto text hex dump raw"

# Lines "SHORT LONG META" of a --help text on stdin ("-" when there is no
# short form, META empty for a flag): "  -c, --control PATH   ...",
# "      --stdin   ...", "  -w, --wait-ready[=MS] ...".
_ovmc_parse_opts() {
	sed -nE 's/^ {2,}(-([A-Za-z0-9]), )?(--[a-z0-9][a-z0-9-]*)(\[=([A-Z][A-Z0-9_|]*)\]| ([A-Z][A-Z0-9_|:]*))?( .*)?$/-\2 \3 \5\6/p' |
		sed -E 's/^- /-- /; s/^-([A-Za-z0-9]) /-\1 /; s/^-- /- /'
}

# The commands a --help text lists: lines "  word ..." (two blanks, then a
# lower-case word; options start with "-").
_ovmc_parse_commands() {
	sed -nE 's/^  ([a-z][a-z0-9-]*)( .*)?$/\1/p'
}

# vmc-run [options] PROGRAM [ARGS...]: after its options, a command name,
# then what that command completes (ours: by their --help; others: files).
# Returns 1 while the cursor is still among vmc-run's own options.
_ovmc_wrapped() {
	local i w n=${#words[@]}
	for ((i = 1; i < n; i++)); do
		w=${words[i]}
		if [[ $w == -* ]]; then
			[[ $w == *=* ]] && continue
			_ovmc_parse_opts <<<"$1" | awk -v w="$w" '($1 == w || $2 == w) && $3 != "" { f = 1 } END { exit !f }' &&
				((i++))
			continue
		fi
		# words[i] is PROGRAM: hand the rest of the line to it.
		case $w in
		vmcctl | openvmc | openvmcd | openvmc-hvd)
			local rest=${line#*[[:space:]]"$w"}
			COMP_LINE="$w$rest"
			COMP_POINT=${#COMP_LINE}
			COMP_WORDS=("$w" "${COMP_WORDS[@]:COMP_CWORD}")
			COMP_CWORD=1
			_ovmc_complete
			;;
		*) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
		esac
		return 0
	done
	[[ $cur == -* ]] && return 1
	# The cursor is on PROGRAM.
	mapfile -t COMPREPLY < <(compgen -c -- "$cur")
	return 0
}

_ovmc_complete() {
	local prog=${COMP_WORDS[0]} line cur i w help opts cmds
	local -a words=() path=() reply=()
	# Words as typed, ':' and '=' included (bash splits at them).
	line=${COMP_LINE:0:COMP_POINT}
	read -ra words <<<"$line"
	cur=
	[[ $line =~ [[:space:]]$ ]] || { cur=${words[${#words[@]}-1]}; unset 'words[${#words[@]}-1]'; }

	help=$("$prog" --help 2>/dev/null) || return 0
	if [[ $prog == vmc-run ]] && _ovmc_wrapped "$help"; then
		return 0
	fi
	# Walk the typed words: commands deepen the help, options skip their
	# argument.
	for ((i = 1; i < ${#words[@]}; i++)); do
		w=${words[i]}
		if [[ $w == -* ]]; then
			[[ $w == *=* ]] && continue
			if _ovmc_parse_opts <<<"$help" | awk -v w="$w" '($1 == w || $2 == w) && $3 != "" { f = 1 } END { exit !f }'; then
				((i++))
			fi
		elif _ovmc_parse_commands <<<"$help" | grep -qxF -- "$w"; then
			path+=("$w")
			help=$("$prog" "${path[@]}" --help 2>/dev/null) || return 0
		fi
	done
	opts=$(_ovmc_parse_opts <<<"$help")
	cmds=$(_ovmc_parse_commands <<<"$help")

	local prev='' meta=''
	((${#words[@]} > 1)) && prev=${words[${#words[@]}-1]}
	if [[ $cur == --*=* ]]; then
		prev=${cur%%=*}
		cur=${cur#*=}
	fi
	if [[ $prev == -* ]]; then
		meta=$(awk -v w="$prev" '$1 == w || $2 == w { print $3; exit }' <<<"$opts")
	fi
	if [[ -n $meta ]]; then
		case $meta in
		LEVEL) mapfile -t reply < <(compgen -W "$_ovmc_levels" -- "$cur") ;;
		SPEC) mapfile -t reply < <(compgen -W "$_ovmc_backends" -- "$cur") ;;
		FMT) mapfile -t reply < <(compgen -W "$_ovmc_formats" -- "$cur") ;;
		*GID* | GRP | GROUP) mapfile -t reply < <(compgen -g -- "$cur") ;;
		DIR) mapfile -t reply < <(compgen -d -- "$cur") ;;
		PATH | FILE | LIB) mapfile -t reply < <(compgen -f -- "$cur") ;;
		esac
	elif [[ $cur == -* ]]; then
		mapfile -t reply < <(compgen -W "$(awk '{ print $2; if ($1 != "-") print $1 }' <<<"$opts")" -- "$cur")
	elif [[ -n $cmds ]]; then
		mapfile -t reply < <(compgen -W "$cmds" -- "$cur")
	else
		mapfile -t reply < <(compgen -f -- "$cur")
	fi
	# Readline replaces only the text after the line's last word-break
	# character (':' and '=' among them): drop what precedes it.
	local k=${#line} prefix
	while ((k > 0)) && [[ $COMP_WORDBREAKS != *"${line:k-1:1}"* ]]; do ((k--)); done
	prefix=${cur%"${line:k}"}
	if [[ -n $prefix ]]; then
		reply=("${reply[@]#"$prefix"}")
		mapfile -t reply < <(printf '%s\n' "${reply[@]}" | grep .)
	fi
	COMPREPLY=("${reply[@]}")
	[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *: ]] && compopt -o nospace 2>/dev/null
	return 0
}

complete -F _ovmc_complete vmcctl openvmc openvmcd openvmc-hvd vmc-run
