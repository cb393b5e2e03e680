"""The nested-shell rule (spec/lint.py) and the shell lexer under it (spec/shellwords.py).

Positions are pinned as (yaml, line, col, code); the rule's reach is tested over generated
commands: every wrapper × interpreter × quoting × namespace form is flagged exactly at its
substitution, and the safe forms (the value as a positional argument, or through env into a
single-quoted script) never are.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.load.yamlsource import parse
from flowctl.spec.lint import carriers, lint_document, nested_uses
from flowctl.spec.shellwords import simple_commands

HEAD = "version: 1\nname: p\nparams: {v: {default: x}}\n"


def flagged(body: str) -> list[tuple[int, int, str]]:
    doc = parse((HEAD + textwrap.dedent(body)).encode(), "p.yaml")
    assert not doc.diagnostics, doc.diagnostics
    return [(d.span.line, d.span.col, d.code) for d in lint_document(doc) if d.span]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('steps:\n  a: {run: \'bash -c "echo ${{ params.v }}"\'}\n', [(5, 27, "nested-shell-substitution")]),
        ('steps:\n  a:\n    run: [sh, -c, "echo ${{ params.v }}"]\n', [(6, 25, "nested-shell-substitution")]),
        ("steps:\n  a:\n    run: |\n      cd /tmp\n      sh -c \"ls ${{ params.v }}\"\n", [(8, 17, "nested-shell-substitution")]),
        ('steps:\n  a:\n    env: {N: "${{ params.v }}"}\n    run: bash -c "echo $N"\n', [(7, 24, "nested-shell-substitution")]),
        ('steps:\n  a:\n    run: "true"\n    remediate: {run: \'eval "${{ params.v }}"\'}\n',
         [(7, 29, "nested-shell-substitution")]),
        ('notify:\n  - run: \'ssh host "echo ${{ params.v }}"\'\nsteps:\n  a: {run: "true"}\n',
         [(5, 26, "nested-shell-substitution")]),
        ("steps:\n  a: {run: 'echo ${{ params.v }}'}\n", []),  # (single quotes: an error, not this rule)
        ('steps:\n  a: {run: \'bash -c ''echo "$1"'' _ "${{ params.v }}"\'}\n', []),
        ("steps:\n  a:\n    env: {N: \"${{ params.v }}\"}\n    run: bash -c 'echo \"$N\"'\n", []),
    ],
)
def test_positions(body: str, expected: list[tuple[int, int, str]]) -> None:
    assert flagged(body) == expected


def test_every_namespace_is_covered_by_construction() -> None:
    # foreach's item/batch (and any namespace added later) need no change to the rule.
    for ref in ("${{ params.v }}", "${{ env.HOME }}", "${{ item.name }}", "${{ batch.files }}", "${{ x.y.z }}"):
        [use] = nested_uses(f'bash -c "echo {ref}"')
        assert use.text == ref
        [use] = nested_uses(("sh", "-c", f"echo {ref}"))
        assert (use.item, use.text) == (2, ref)


def test_a_variable_carries_what_its_env_entry_holds() -> None:
    tainted = carriers({"A": "${{ params.v }}", "B": "literal"}, {"A": "overridden"}, {"C": "x ${{ item.n }}"})
    assert tainted("A") is None and tainted("B") is None and tainted("C") == "${{ item.n }}"
    assert tainted("FLOWCTL_PARAM_DAY") == "FLOWCTL_PARAM_DAY"  # flowctl's own variables always count
    [use] = nested_uses('sh -c "echo $C ${B}"', tainted)
    assert (use.text, use.via) == ("$C", "C")
    assert nested_uses("sh -c 'eval \"$C\"'", tainted)[0].place == "the arguments of `eval`"  # one level down


# -- generated forms ----------------------------------------------------------------------

WRAPPERS = ["", "sudo -u app ", "env A=1 ", "timeout 5 ", "nice -n 5 ", "xargs -0 ", "find . -exec ", "nohup ",
            "docker exec box ", "FOO=bar "]
SHELL_FLAGS = ["-c", "-ec", "-lc", "-xc", "-e -c", "-o pipefail -c", "--norc -c"]
INTERPRETERS = [*(f"{sh} {flags}" for sh in ("sh", "bash", "zsh", "dash", "/bin/sh", "/usr/bin/bash")
                  for flags in SHELL_FLAGS),
                "eval", "su -c", "su app -c", "ssh host", "ssh -p 2222 -i key user@host", "python3 -c", "python -c",
                "python3.11 -Bc", "perl -e", "perl -le", "ruby -e", "node -e", "node --eval", "php -r"]
NAMESPACES = ["params.v", "env.HOME", "item.name", "batch.paths"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(WRAPPERS), st.sampled_from(INTERPRETERS), st.sampled_from(NAMESPACES),
       st.sampled_from(["{}", "echo {}", "x{}y", "ls {} && rm -f {}.tmp", "$(cat {})"]),
       st.sampled_from(["double", "unquoted", "argv"]))
def test_a_generated_nested_form_is_flagged_at_its_substitution(
    wrapper: str, interpreter: str, namespace: str, script: str, quoting: str
) -> None:
    ref = "${{ " + namespace + " }}"
    body = script.replace("{}", ref, 1).replace("{}", "x")
    if quoting == "argv":
        run: str | tuple[str, ...] = (*f"{wrapper}{interpreter}".split(), body)
        start = body.index(ref)
    else:
        word = f'"{body}"' if quoting == "double" or " " in body else body
        run = f"{wrapper}{interpreter} {word}"
        start = run.index(ref)
    uses = nested_uses(run)
    assert [(u.start, u.end, u.text) for u in uses] == [(start, start + len(ref), ref)], run


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(WRAPPERS), st.sampled_from([i for i in INTERPRETERS if i.split()[0].endswith("sh")
                                                   and i.split()[0] != "ssh"]),
       st.sampled_from(NAMESPACES), st.sampled_from(["positional", "env", "argv_env"]))
def test_a_generated_safe_form_is_never_flagged(wrapper: str, interpreter: str, namespace: str, form: str) -> None:
    ref = "${{ " + namespace + " }}"
    tainted = carriers({"VALUE": ref})
    if form == "positional":  # the value is an argument of the script, never part of it
        run: str | tuple[str, ...] = f"{wrapper}{interpreter} 'printf \"%s\" \"$1\"' _ \"{ref}\""
    elif form == "env":  # the value arrives through env into a single-quoted script
        run = f"{wrapper}{interpreter} 'printf \"%s\" \"$VALUE\"'"
    else:  # no outer shell: the nested shell expands $VALUE itself
        run = (*f"{wrapper}{interpreter}".split(), 'printf "%s" $VALUE')
    assert nested_uses(run, tainted) == [], run


def test_commands_without_an_interpreter_or_a_value_are_not_lexed() -> None:
    assert nested_uses("python3 scripts/load.py --day ${{ params.v }}") == []
    assert nested_uses('bash -c "echo hello"') == []
    assert nested_uses(("python3", "-c", "print(1)", "${{ params.v }}")) == []  # sys.argv: data


# -- the lexer ----------------------------------------------------------------------------


def words(text: str) -> list[list[str]]:
    return [[text[w.start : w.end] for w in c.words] for c in simple_commands(text)]


def test_lexer_words_operators_and_nesting() -> None:
    assert words("a 'b c' \"d $e\" f\\ g; h && i | j") == [["a", "'b c'", '"d $e"', "f\\ g"], ["h"], ["i"], ["j"]]
    assert words("x=$(bash -c \"echo $(date)\") 2>&1 >out # c; d") == [
        ["date"], ["bash", "-c", '"echo $(date)"'], ["x=$(bash -c \"echo $(date)\")"]]
    assert words("echo `sh -c hi`") == [["sh", "-c", "hi"], ["echo", "`sh -c hi`"]]


def test_lexer_here_documents_and_strings() -> None:
    text = "bash <<EOF >log\necho $A\nEOF\ncat <<'X'\n$B\nX\nsh <<< \"$C\""
    cmds = simple_commands(text)
    stdin = [[(s.kind, text[s.start : s.end], s.expanded, [e.name for e in s.expansions]) for s in c.stdin]
             for c in cmds]
    assert stdin == [[("here-document", "echo $A\n", True, ["A"])], [("here-document", "$B\n", False, [])],
                     [("here-string", '"$C"', True, ["C"])]]
    assert [w.literal for w in cmds[0].words] == ["bash"]


def test_lexer_records_expansions_the_shell_makes_and_only_those() -> None:
    [cmd] = simple_commands("echo '$no' \"$yes ${also:-x}\" $bare \\$escaped")
    assert [e.name for w in cmd.words for e in w.expansions] == ["yes", "also", "bare"]


SHELLISH = st.lists(st.sampled_from([*"ab $(){}`'\"\\|&;<>-\n\t#=*", "${{ params.v }}", "sh -c ", "eval ", "<<EOF\n",
                                     "EOF\n", "ssh h ", "python3 -c ", "$((", "${", "$a"]), max_size=40).map("".join)


@settings(max_examples=500, deadline=None, database=None)
@given(SHELLISH)
def test_any_text_is_lexed_without_error(text: str) -> None:
    # validate must never crash on a command, however broken its quoting.
    for use in nested_uses(text, carriers({"a": "${{ params.v }}"})):
        assert 0 <= use.start < use.end <= len(text)
    nested_uses(tuple(text.split(" ")))
    simple_commands(text)
