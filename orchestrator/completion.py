"""Shell completion for bash and zsh, generated from the CLI's own argparse parser.

`eval "$(orchestrator completion bash)"` in ~/.bashrc (or `zsh` in ~/.zshrc) installs it, and
regenerates it in every new shell: subcommands, flags, flag values (`--executor`'s choices) and
which arguments are experiments or profiles are read from `cli.build_parser()`, so a command or
flag added to the CLI is completed without touching this file.

File names come from the project the shell is in at the moment of the TAB: the project root is
the nearest directory above holding `config.json` (as the CLI finds it); experiment files are the
`.json`/`.yaml`/`.yml` files under its `experiment_directory` (default `experiments`), profiles
those under `clusters/`, written relative to the current directory. When none matches what was
typed, any directory or such file completes as usual. The scripts read `experiment_directory`
with `sed` (a string on one line, as PyExpUtils writes config.json), so a TAB starts no Python.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SHELLS = ("bash", "zsh")


@dataclass(frozen=True)
class Value:
    """What an option's value or a positional argument completes to."""

    kind: str  # "experiment", "profile", "file", "choices" or "none"
    name: str  # the metavar, shown by zsh
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Option:
    strings: tuple[str, ...]  # e.g. ("--escalate", "--no-escalate")
    help: str
    value: Value | None  # None: a flag


@dataclass(frozen=True)
class Positional:
    value: Value
    repeats: bool  # nargs '+' or '*': this and every further word


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]


@dataclass(frozen=True)
class Interface:
    """What completion needs to know of a parser."""

    prog: str
    options: tuple[Option, ...]  # before the subcommand
    commands: tuple[Command, ...]


# -- reading the parser ------------------------------------------------------------------------


def read_parser(parser: argparse.ArgumentParser) -> Interface:
    """The top-level options and every subcommand with its options and positionals."""
    subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    commands: tuple[Command, ...] = ()
    if subparsers is not None:
        helps = {choice.dest: _one_line(choice.help) for choice in subparsers._choices_actions}
        commands = tuple(
            Command(name, helps.get(name, ""), _options(sub), _positionals(sub))
            for name, sub in subparsers.choices.items()
        )
    return Interface(parser.prog, _options(parser), commands)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").replace("%%", "%").split())


def _value(action: argparse.Action) -> Value:
    name = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    if action.choices is not None:
        return Value("choices", name, tuple(str(c) for c in action.choices))
    if name == "EXPERIMENT" or action.dest in ("experiment", "experiments"):
        return Value("experiment", name)
    if name == "PROFILE" or action.dest == "cluster":
        return Value("profile", name)
    if name in ("FILE", "PATH", "DIR"):
        return Value("file", name)
    return Value("none", name)


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    """The visible flags (a flag with help=SUPPRESS is hidden on purpose, and stays hidden)."""
    return tuple(
        Option(tuple(a.option_strings), _one_line(a.help), None if a.nargs == 0 else _value(a))
        for a in parser._actions
        if a.option_strings and a.help is not argparse.SUPPRESS
    )


def _positionals(parser: argparse.ArgumentParser) -> tuple[Positional, ...]:
    return tuple(
        Positional(_value(a), a.nargs in ("+", "*", argparse.REMAINDER))
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    )


# -- the scripts -------------------------------------------------------------------------------


def completion_script(shell: str, parser: argparse.ArgumentParser | None = None) -> str:
    """The completion script for `shell` ("bash" or "zsh"); the CLI's own parser by default."""
    if parser is None:
        from orchestrator.cli import build_parser  # here, not at the top: the CLI imports this module

        parser = build_parser()
    interface = read_parser(parser)
    if shell == "bash":
        return _HEADER.format(shell="bash", rc="~/.bashrc") + _HELPERS + _BASH + "".join(bash_tables(interface))
    if shell == "zsh":
        return _HEADER.format(shell="zsh", rc="~/.zshrc") + _HELPERS + _ZSH + "".join(zsh_tables(interface))
    raise ValueError(f"no completion for {shell!r}; shells: {', '.join(SHELLS)}")


def _array(words: Sequence[str]) -> str:
    return "(" + " ".join(shlex.quote(w) for w in words) + ")"


def _kind(value: Value) -> str:
    return f"_orchestrator_kind={value.kind} _orchestrator_choices={_array(value.choices)}"


def bash_tables(interface: Interface) -> Iterator[str]:
    """The parser as `case` tables; the functions of `_BASH` ask them (see there)."""
    commands = interface.commands
    yield f"\n_orchestrator_commands={_array([c.name for c in commands])}\n"
    yield "_orchestrator_options() {\n    case $1 in\n"
    yield f"        '') _orchestrator_words={_array([s for o in interface.options for s in o.strings])} ;;\n"
    for command in commands:
        strings = [s for o in command.options for s in o.strings]
        yield f"        {shlex.quote(command.name)}) _orchestrator_words={_array(strings)} ;;\n"
    yield "        *) _orchestrator_words=() ;;\n    esac\n}\n"
    yield '_orchestrator_value() {\n    case "$1 $2" in\n'
    for command in commands:
        for option in command.options:
            for string in option.strings if option.value else ():
                yield f"        {shlex.quote(f'{command.name} {string}')}) {_kind(option.value)} ;;\n"
    yield "        *) return 1 ;;\n    esac\n}\n"
    yield '_orchestrator_positional() {\n    case "$1 $2" in\n'
    for command in commands:
        for number, positional in enumerate(command.positionals):
            # a repeating positional is the last one: `'cmd '*` matches it and every later word (first match wins)
            pattern = (
                shlex.quote(f"{command.name} ") + "*" if positional.repeats else shlex.quote(f"{command.name} {number}")
            )
            yield f"        {pattern}) {_kind(positional.value)} ;;\n"
    yield "        *) return 1 ;;\n    esac\n}\n"
    yield f"complete -F _orchestrator {shlex.quote(interface.prog)}\n"


def _zsh_escape(text: str, specials: str) -> str:
    return "".join("\\" + c if c in specials else c for c in text)


def _zsh_action(value: Value) -> str:
    message = _zsh_escape(value.name, ":\\")
    action = {
        "experiment": "_orchestrator_experiments",
        "profile": "_orchestrator_profiles",
        "file": "_files",
        "choices": "(" + " ".join(_zsh_escape(c, " ()\\:") for c in value.choices) + ")",
    }.get(value.kind, " ")
    return f":{message}:{action}"


def _zsh_option_specs(options: Sequence[Option]) -> Iterator[str]:
    for option in options:
        exclusive = f"({' '.join(option.strings)})" if len(option.strings) > 1 else ""
        description = _zsh_escape(option.help, "[]\\")
        for string in option.strings:
            if option.value is None:
                yield f"{exclusive}{string}[{description}]"
            else:
                equals = "=" if string.startswith("--") else ""
                yield f"{exclusive}{string}{equals}[{description}]{_zsh_action(option.value)}"


def _zsh_positional_specs(positionals: Sequence[Positional]) -> Iterator[str]:
    for number, positional in enumerate(positionals, start=1):
        yield ("*" if positional.repeats else str(number)) + _zsh_action(positional.value)


def zsh_tables(interface: Interface) -> Iterator[str]:
    """The parser as `_arguments` specs: the top level, the command list, each command's arguments."""
    described = [f"{c.name}:{_zsh_escape(c.help, ':')}" for c in interface.commands]
    yield f"\n_orchestrator_commands() {{\n    local -a commands\n    commands={_array(described)}\n"
    yield "    _describe -t commands 'orchestrator command' commands\n}\n"
    top = " ".join(shlex.quote(s) for s in _zsh_option_specs(interface.options))
    yield f"_orchestrator_top_specs=({top})\n"
    yield "_orchestrator_command_specs() {\n    case $1 in\n"
    for command in interface.commands:
        specs = [*_zsh_option_specs(command.options), *_zsh_positional_specs(command.positionals)]
        yield f"        {shlex.quote(command.name)}) _orchestrator_specs={_array(specs)} ;;\n"
    yield "        *) return 1 ;;\n    esac\n}\n"
    yield f"compdef _orchestrator {shlex.quote(interface.prog)}\n"


_HEADER = """\
# {shell} completion for orchestrator, generated by `orchestrator completion {shell}` from its parser.
# Install (regenerated in every new shell, so it follows the installed version):
#   echo 'eval "$(orchestrator completion {shell})"' >> {rc}
"""

# Shared by both shells (the syntax is common to bash and zsh).
_HELPERS = r"""
# The project root: the nearest directory at or above $PWD holding config.json.
_orchestrator_root() {
    local dir=$PWD
    while :; do
        if [[ -f $dir/config.json ]]; then
            printf '%s\n' "${dir:-/}"
            return 0
        fi
        [[ -n $dir ]] || return 1
        dir=${dir%/*}
    done
}

# The experiment directory of the project at $1: config.json's experiment_directory, default experiments.
_orchestrator_experiment_dir() {
    local value
    value=$(sed -n 's/.*"experiment_directory"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1/config.json" 2>/dev/null)
    value=${value%%$'\n'*}
    case $value in
        '') value=$1/experiments ;;
        /*) ;;
        \~) value=$HOME ;;
        \~/*) value=$HOME/${value#\~/} ;;
        *) value=$1/$value ;;
    esac
    printf '%s\n' "${value%/}"
}

# The .json/.yaml/.yml files under directory $2 of the project at $1: relative to $PWD (the shortest
# way) when inside the project, else absolute.
_orchestrator_files() {
    local root=${1%/} dir=$2 file common up
    [[ -d $dir ]] || return 0
    while IFS= read -r file; do
        if [[ $file != "$root"/* ]]; then
            printf '%s\n' "$file"
            continue
        fi
        common=$PWD
        up=''
        while [[ -n $common && $file != "$common"/* ]]; do
            common=${common%/*}
            up+=../
        done
        printf '%s\n' "$up${file#"$common"/}"
    done < <(find -H "$dir" -maxdepth 8 -type f \( -name '*.json' -o -name '*.yaml' -o -name '*.yml' \) \
        2>/dev/null | LC_ALL=C sort)
}

# The experiment ($1 = experiment) or profile ($1 = profile) files of the current project, one a line.
_orchestrator_project_files() {
    local root
    root=$(_orchestrator_root) || return 0
    if [[ $1 == profile ]]; then
        _orchestrator_files "$root" "$root/clusters"
    else
        _orchestrator_files "$root" "$(_orchestrator_experiment_dir "$root")"
    fi
}
"""

_BASH = r"""
# Words that start with the word being completed.
_orchestrator_reply() {
    local word
    for word in "$@"; do
        [[ $word == "$cur"* ]] && COMPREPLY+=("$word")
    done
}

# Complete a value of the kind the tables set: choices, experiment or profile files, any file.
_orchestrator_complete_value() {
    local file
    case $_orchestrator_kind in
        choices) _orchestrator_reply "${_orchestrator_choices[@]}" ;;
        experiment | profile)
            while IFS= read -r file; do
                [[ $file == "$cur"* ]] && COMPREPLY+=("$file")
            done < <(_orchestrator_project_files "$_orchestrator_kind")
            if ((${#COMPREPLY[@]} == 0)); then
                while IFS= read -r file; do
                    [[ -d $file || $file == *.json || $file == *.yaml || $file == *.yml ]] && COMPREPLY+=("$file")
                done < <(compgen -f -- "$cur")
            fi
            compopt -o filenames 2>/dev/null
            ;;
        file)
            while IFS= read -r file; do COMPREPLY+=("$file"); done < <(compgen -f -- "$cur")
            compopt -o filenames 2>/dev/null
            ;;
    esac
    return 0
}

_orchestrator() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev='' option command='' word i=1 positional=0
    local _orchestrator_kind _orchestrator_words
    local -a _orchestrator_choices
    COMPREPLY=()
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    # The subcommand, and how many positional words come before the current one.
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        if [[ -z $command ]]; then
            [[ $word == -* ]] || command=$word
        elif [[ $word == -* ]]; then
            if _orchestrator_value "$command" "$word"; then
                ((i += 1))  # its value, also when bash split --opt=value at the '='
                [[ ${COMP_WORDS[i]} == = ]] && ((i += 1))
            fi
        else
            ((positional += 1))
        fi
        ((i += 1))
    done
    # An option's value: `--cluster <TAB>`, `--cluster=<TAB>`.
    option=$prev
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        option=${COMP_WORDS[COMP_CWORD - 2]}
    fi
    if [[ -n $command && $option == -* ]] && _orchestrator_value "$command" "$option"; then
        _orchestrator_complete_value
    elif [[ $cur == -* ]]; then
        _orchestrator_options "$command"
        _orchestrator_reply "${_orchestrator_words[@]}"
    elif [[ -z $command ]]; then
        _orchestrator_reply "${_orchestrator_commands[@]}"
    elif _orchestrator_positional "$command" "$positional"; then
        _orchestrator_complete_value
    fi
    return 0
}
"""

_ZSH = r"""
_orchestrator_zsh_files() {
    local -a files
    files=("${(@f)$(_orchestrator_project_files "$1")}")
    files=(${files:#})
    # the project's files when one matches what was typed, else any directory or such file
    compadd -f -- "${files[@]}" || _files -g '*.(json|yaml|yml)(-.)'
}
_orchestrator_experiments() { _orchestrator_zsh_files experiment; }
_orchestrator_profiles() { _orchestrator_zsh_files profile; }

_orchestrator() {
    local curcontext=$curcontext state state_descr line ret=1
    local -a _orchestrator_specs
    typeset -A opt_args
    _arguments -C "${_orchestrator_top_specs[@]}" '1: :_orchestrator_commands' '*:: :->arguments' && ret=0
    if [[ $state == arguments ]] && _orchestrator_command_specs "$words[1]"; then
        curcontext=${curcontext%:*:*}:orchestrator-$words[1]:
        _arguments -S "${_orchestrator_specs[@]}" && ret=0
    fi
    return ret
}

(( $+functions[compdef] )) || { autoload -Uz compinit && compinit; }
"""
