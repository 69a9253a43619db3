#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion (completion/openvmc.bash) loaded into this bash and
# asked as readline asks it, with the programs of the build tree on PATH.
#
# Environment: OVMC_SOURCE_DIR, OVMC_BUILD_DIR.

src=$OVMC_SOURCE_DIR
PATH=$OVMC_BUILD_DIR/src/tools:$OVMC_BUILD_DIR/src/daemon:$OVMC_BUILD_DIR/src/preload:$PATH
# shellcheck source=completion/openvmc.bash
. "$src/completion/openvmc.bash"

# complete LINE: COMPREPLY for the cursor at the end of LINE, with
# COMP_WORDS split as bash splits them (blanks, and each run of the
# COMP_WORDBREAKS characters ':' and '=' a word of its own).
complete_line() {
	local w
	COMP_LINE=$1
	COMP_POINT=${#1}
	COMP_WORDS=()
	for w in $1; do
		while [[ $w =~ ^([^:=]*)([:=]+)(.*)$ ]]; do
			[ -n "${BASH_REMATCH[1]}" ] && COMP_WORDS+=("${BASH_REMATCH[1]}")
			COMP_WORDS+=("${BASH_REMATCH[2]}")
			w=${BASH_REMATCH[3]}
		done
		[ -n "$w" ] && COMP_WORDS+=("$w")
	done
	[[ $1 == *' ' ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_ovmc_complete
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

# expect LINE WORD...: exactly these completions.
expect() {
	local line=$1 got want
	shift
	got=$(complete_line "$line")
	want=$(printf '%s\n' "$@" | sort)
	[ "$got" = "$want" ] || fail "[$line] completed to [${got//$'\n'/ }], not [${want//$'\n'/ }]"
}

# The long options of a --help text, read independently of the script.
help_longopts() {
	grep -oE '^ +(-[A-Za-z0-9], )?--[a-z0-9][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+' | sort -u
}

test_registered_for_every_program() {
	local p
	for p in vmcctl openvmc openvmcd openvmc-hvd vmc-run; do
		complete -p "$p" | grep -q -- '-F _ovmc_complete' || fail "$p has no completion"
	done
}

test_vmcctl_completes_its_commands_and_their_subcommands() {
	expect "vmcctl " query request-vmc open pipe status hv ctl trace
	expect "vmcctl st" status
	expect "vmcctl hv " send restart sessions
	expect "vmcctl hv res" restart
	# An option's argument is not taken for a command.
	expect "vmcctl -d /dev/null q" query
}

test_vmcctl_completes_the_options_of_the_command_typed() {
	expect "vmcctl open --hmc" --hmc-id --hmc-id-hex
	expect "vmcctl hv send --i" --index
	expect "vmcctl query --w" --wait-ready
	local all
	mapfile -t all < <(vmcctl trace --help | help_longopts
		vmcctl trace --help | grep -oE '^  -[A-Za-z0-9],' | tr -d ' ,')
	expect "vmcctl trace -" "${all[@]}"
}

test_every_option_of_every_help_is_offered() {
	local p c got
	for p in openvmc openvmcd openvmc-hvd vmc-run "vmcctl" "vmcctl open" "vmcctl pipe" "vmcctl status" \
		"vmcctl hv" "vmcctl hv send" "vmcctl hv restart" "vmcctl hv sessions" "vmcctl trace"; do
		# shellcheck disable=SC2086 # p is a program and its commands
		c=$($p --help | help_longopts)
		[ -n "$c" ] || fail "$p --help lists no option"
		got=$(complete_line "$p --" | grep -- '^--')
		[ "$got" = "$c" ] || fail "$p: offered [${got//$'\n'/ }], --help has [${c//$'\n'/ }]"
	done
}

test_option_values_complete_by_kind() {
	local d
	scratch d
	touch "$d/vmc.pcapng"
	expect "openvmc-hvd --log-level " error warn info debug trace
	expect "openvmcd --log-level=de" debug
	expect "openvmc-hvd --backend so" socket: socket:tcp:
	# Bash replaces the text after the last ':' only.
	expect "openvmc-hvd --backend socket:t" tcp:
	expect "openvmcd --capture $d/vmc.p" "$d/vmc.pcapng"
	expect "vmcctl -d $d/vm" "$d/vmc.pcapng"
	expect "openvmc --group roo" root
	expect "vmcctl open --format " auto text hex dump raw
	expect "vmcctl pipe --format=d" dump
	# A value nobody can guess: nothing rather than files.
	expect "openvmc --hmcs "
}

test_vmc_run_completes_its_options_a_command_then_that_command() {
	expect "vmc-run --so" --socket
	expect "vmc-run --preload $OVMC_BUILD_DIR/src/preload/libopenvmc-pre" \
		"$OVMC_BUILD_DIR/src/preload/libopenvmc-preload.so"
	complete_line "vmc-run vmcct" | grep -qx vmcctl || fail "vmc-run does not offer the command vmcctl"
	expect "vmc-run -d /dev/null vmcctl hv " send restart sessions
	expect "vmc-run vmcctl open --hmc" --hmc-id --hmc-id-hex
}

# The value lists the script keeps are the ones --help documents.
test_value_lists_match_the_programs_help() {
	local p w line
	for p in openvmc openvmcd openvmc-hvd; do
		line=$($p --help | grep -- '--log-level')
		for w in $_ovmc_levels; do
			grep -qw -- "$w" <<<"$line" || fail "$p --help: no log level $w in: $line"
		done
		# And no level the script does not know.
		# shellcheck disable=SC2013 # words, not lines
		for w in $(sed 's/.*LEVEL//; s/(default)//; s/,/ /g; s/\bor\b/ /g' <<<"$line"); do
			grep -qw -- "$w" <<<"$_ovmc_levels" || fail "$p: level $w not completed"
		done
	done
	for p in open pipe; do
		line=$(vmcctl $p --help | sed -n '/--format/,/^  -/p' | sed '$d')
		for w in $_ovmc_formats; do
			grep -qw -- "$w" <<<"$line" || fail "vmcctl $p --help: no format $w in: $line"
		done
	done
	line=$(openvmc-hvd --help | sed -n '/--backend/,/^  -/p' | sed '$d')
	for w in $_ovmc_backends; do
		grep -qF -- "$w" <<<"$line" || fail "openvmc-hvd --help: no backend $w in: $line"
	done
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
