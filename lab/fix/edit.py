"""Edit a copy of a customer's file with the smallest change in the customer's own style.

Every edit works on lines (:class:`lab.fix.lines.Lines`): an existing directive that
governs Bitbucket's traffic is changed in place (its indentation, spacing and comment
kept); otherwise one line is added in the block the directive belongs in, beside that
block's own settings, indented as its siblings are. Nothing is reformatted or reordered.
A shape the editor cannot change safely (a directive spread over lines, a variable in
``proxy_pass``, no block of the scope asked) is "not applicable", with a reason — never a
guess. The anchor is the line that routes Bitbucket (:class:`Anchor`); every scope is
found from it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from lab.fix.lines import Lines, indent_unit, indentation
from lab.fix.model import (AddFlag, Anchor, Edit, EditResult, Outcome, SetDirective, SetSetting, Status,
                           StripUriPart)
from lab.fix.syntax import Block, ConfigEditor, Directive, editor_of

__all__ = ["Anchor", "AddFlag", "Edit", "EditResult", "Outcome", "SetDirective", "SetSetting", "Status",
           "StripUriPart", "apply_edits", "unified_diff"]


def apply_edits(text: str, kind: str, edits: Sequence[Edit], anchor: Anchor | None) -> EditResult:
    """``text`` with ``edits`` applied in order, and what became of each."""
    outcomes = []
    for edit in edits:
        before = len(Lines.of(text))
        text, outcome = _apply(text, kind, edit, anchor)
        outcomes.append(outcome)
        anchor = shifted(anchor, [outcome.line] if len(Lines.of(text)) > before and outcome.line else [])
    return EditResult(text, tuple(outcomes))


def shifted(anchor: Anchor | None, inserted: Sequence[int]) -> Anchor | None:
    """``anchor`` after lines were inserted at ``inserted`` (their new numbers, in order)."""
    if anchor is None:
        return None
    line = anchor.line
    for position in inserted:
        if position <= line:
            line += 1
    return Anchor(line)


def unified_diff(relpath: str, before: str, after: str) -> str:
    """``--- a/<relpath>`` / ``+++ b/<relpath>`` diff of the two texts; "" when they are equal."""
    if before == after:
        return ""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"a/{relpath}", tofile=f"b/{relpath}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _apply(text: str, kind: str, edit: Edit, anchor: Anchor | None) -> tuple[str, Outcome]:
    try:
        if isinstance(edit, SetSetting):
            return _set_setting(text, kind, edit)
        if anchor is None or not 0 < anchor.line <= len(Lines.of(text)):
            return text, Outcome(edit, Status.NOT_APPLICABLE, "no line of this file routes Bitbucket")
        editor = editor_of(kind)
        if isinstance(edit, SetDirective) and editor is not None:
            return _set_directive(text, editor, edit, anchor.line)
        special = editor.special.get(type(edit)) if editor is not None else None
        if special is not None:
            return special(text, edit, anchor.line)
    except ValueError as error:
        return text, Outcome(edit, Status.NOT_APPLICABLE, str(error))
    return text, Outcome(edit, Status.NOT_APPLICABLE, f"no such edit for a {kind} file")


# ---------------------------------------------------------------- SetDirective


def _set_directive(text: str, editor: ConfigEditor, edit: SetDirective, anchor: int) -> tuple[str, Outcome]:
    lines = Lines.of(text)
    chain = editor.governing(editor.blocks(lines), anchor, edit.scope)
    target = editor.scope_block(chain, edit.scope)
    governing = chain[: chain.index(target) + 1] if target in chain else chain
    for block in governing:  # the nearest existing one, up to the scope asked, is changed in place
        found = _find(block, editor, edit.directive)
        if found is not None:
            return _change_in_place(lines, editor, edit, found)
    return _insert(lines, editor, edit, target, anchor)


def _find(block: Block, editor: ConfigEditor, directive: str) -> Directive | None:
    words = directive.split()
    for item in reversed(block.directives):
        name, args = item[0], item[1]
        if editor.names_fold_case and name == words[0].lower():
            return item
        if not editor.names_fold_case and (name, *args[: len(words) - 1]) == tuple(words):
            return item
    return None


def _change_in_place(lines: Lines, editor: ConfigEditor, edit: SetDirective, found: Directive) -> tuple[str, Outcome]:
    name, args, line, end = found
    words = len(edit.directive.split())
    value = " ".join(args[words - 1:]).rstrip(";")
    if value.strip("\"'") == edit.value:
        return lines.text, Outcome(edit, Status.SATISFIED, f"line {line} already says it", line)
    if end != line:
        raise ValueError(f"line {line}: the directive continues on another line; change it by hand")
    content = lines.content(line)
    match = re.match(rf"(\s*{re.escape(edit.directive.split()[0])}\s+" +
                     "".join(rf"{re.escape(w)}\s+" for w in edit.directive.split()[1:]) + r")([^;#]*?)"
                     # after a terminator (nginx's ``;``) the line may go on with other directives
                     + (rf"(\s*{re.escape(editor.terminator)}.*)$" if editor.terminator else r"(\s*;?\s*(?:#.*)?)$"),
                     content, re.I)
    if match is None:
        raise ValueError(f"line {line} holds more than the directive; change it by hand")
    return (lines.replace(line, match.group(1) + edit.value + match.group(3)).text,
            Outcome(edit, Status.APPLIED, f"line {line}: {edit.directive} {value} → {edit.value}", line))


def _insert(lines: Lines, editor: ConfigEditor, edit: SetDirective, block: Block, anchor: int) -> tuple[str, Outcome]:
    """One line in ``block``, after its own last setting before its first nested block (or the
    anchor) — or before the first of the kind's ``insert_before`` directives."""
    stop = min([child.first for child in block.children if child.first > block.first] + [anchor if block.holds(anchor)
                                                                                            and anchor > block.first
                                                                                            else block.last + 1])
    if editor.insert_before:
        routing = [d[2] for d in block.directives if d[0] in editor.insert_before]
        stop = min([*routing, stop]) if routing else block.last + 1
    own = [d for d in block.directives if d[2] < stop]
    if own:
        after, indent = own[-1][3], indentation(lines.content(own[-1][2]))
    elif block.name == "":
        after, indent = 0 if anchor <= 1 else anchor - 1, indentation(lines.content(anchor))
    else:
        pairs = [(child.first, child.first + 1) for child in block.children] + [(block.first, block.first + 1)]
        after = block.first
        indent = indentation(lines.content(block.first)) + indent_unit(lines, [p for p in pairs if p[1] <= len(lines)])
    line = f"{indent}{' '.join(filter(None, (edit.directive, edit.value)))}{editor.terminator}"
    return (lines.insert_after(after, [line]).text,
            Outcome(edit, Status.APPLIED, f"line {after + 1} added: {line.strip()}", after + 1))


# ---------------------------------------------------------------- Bitbucket's settings


def _set_setting(text: str, kind: str, edit: SetSetting) -> tuple[str, Outcome]:
    if kind == "properties":
        pattern, new = rf"^(\s*{re.escape(edit.key)}\s*[=:]\s*|\s*{re.escape(edit.key)}\s+)(.*?)(\s*)$", f"{edit.key}={edit.value}"
    elif kind in ("env", "compose"):
        name = re.sub(r"[.-]", "_", edit.key).upper()
        if kind == "compose":
            return _set_compose(text, edit, name)
        pattern, new = rf"^(\s*(?:export\s+)?{name}=)(.*?)(\s*)$", f"{name}={edit.value}"
    else:
        return text, Outcome(edit, Status.NOT_APPLICABLE, f"settings in a {kind} file are changed by hand")
    lines = Lines.of(text)
    for number in range(len(lines), 0, -1):
        match = re.match(pattern, lines.content(number))
        if match:
            if match.group(2).strip("\"'") == edit.value:
                return text, Outcome(edit, Status.SATISFIED, f"line {number} already says it", number)
            return (lines.replace(number, match.group(1) + edit.value + match.group(3)).text,
                    Outcome(edit, Status.APPLIED, f"line {number}: {edit.key}={edit.value}", number))
    last = max((n for n in range(1, len(lines) + 1) if lines.content(n).strip()), default=0)
    return lines.insert_after(last, [new]).text, Outcome(edit, Status.APPLIED, f"line {last + 1} added: {new}", last + 1)


_BITBUCKET_IMAGE = re.compile(r"^\s*image:\s*['\"]?\S*(?:bitbucket|stash)", re.I)


def _set_compose(text: str, edit: SetSetting, name: str) -> tuple[str, Outcome]:
    """The variable in the ``environment:`` of the service whose image is Bitbucket's, list or mapping form."""
    lines = Lines.of(text)
    image = next((n for n in range(1, len(lines) + 1) if _BITBUCKET_IMAGE.match(lines.content(n))), None)
    if image is None:
        raise_na = "no service in the compose file runs Bitbucket's image"
        return text, Outcome(edit, Status.NOT_APPLICABLE, raise_na)
    service_indent = len(indentation(lines.content(image)))
    start = image
    while start > 1 and len(indentation(lines.content(start - 1))) >= service_indent:
        start -= 1
    end = image
    while end < len(lines) and (not lines.content(end + 1).strip() or
                                len(indentation(lines.content(end + 1))) >= service_indent):
        end += 1
    environment = next((n for n in range(start, end + 1) if re.match(r"^\s*environment:\s*$", lines.content(n))), None)
    if environment is None:
        return text, Outcome(edit, Status.NOT_APPLICABLE, "the Bitbucket service has no environment: block")
    entries = []
    for number in range(environment + 1, end + 1):
        content = lines.content(number)
        if content.strip() and len(indentation(content)) <= len(indentation(lines.content(environment))):
            break
        if content.strip():
            entries.append(number)
    for number in entries:
        match = re.match(rf"^(\s*-\s*['\"]?{name}=)(.*?)(['\"]?\s*)$|^(\s*['\"]?{name}['\"]?:\s*)(.*?)(\s*)$",
                         lines.content(number))
        if match:
            prefix, value, suffix = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
                match.group(4), match.group(5), match.group(6))
            if value.strip("\"'") == edit.value:
                return text, Outcome(edit, Status.SATISFIED, f"line {number} already says it", number)
            quote = value[0] if value[:1] in "\"'" and match.group(4) else ""
            return (lines.replace(number, prefix + quote + edit.value + quote + suffix).text,
                    Outcome(edit, Status.APPLIED, f"line {number}: {name}={edit.value}", number))
    if not entries:
        return text, Outcome(edit, Status.NOT_APPLICABLE, "the environment: block is empty")
    sibling = lines.content(entries[-1])
    indent = indentation(sibling)
    new = f"{indent}- {name}={edit.value}" if sibling.strip().startswith("-") else f"{indent}{name}: {edit.value}"
    return (lines.insert_after(entries[-1], [new]).text,
            Outcome(edit, Status.APPLIED, f"line {entries[-1] + 1} added: {new.strip()}", entries[-1] + 1))
