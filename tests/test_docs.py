"""The front page stays short and the manual stays walkable: README.md is at most 250 lines, every
relative link in README.md and docs/*.md reaches a file (and a heading, for an #anchor), every page of
docs/ is linked from the README, the scripts, make targets and configs the commands name exist, and the
options and config keys they pass are ones the scripts take."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from pathlib import Path

import pytest

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def prose_and_code(text: str) -> tuple[str, str]:
    """The text outside code (fenced blocks and `spans`), and the code: links live in the one, commands
    in the other."""
    rest, code, fenced = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):  # an indented block is code too
            code.append(line)
        else:
            rest.append(line)
    rest_text = "\n".join(rest)
    code += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", rest_text)]  # a span may wrap
    return re.sub(r"`[^`]*`", "``", rest_text), "\n".join(code)


def anchors(page: Path) -> set[str]:
    """GitHub's ids for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    found, seen, fenced = set(), {}, False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().replace("`", "").lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def test_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move the detail into docs/ (at most 250)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    prose, _ = prose_and_code(page.read_text())
    broken = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    prose, _ = prose_and_code((REPO / "README.md").read_text())
    linked = {(REPO / t.partition("#")[0]).resolve() for t in LINK.findall(prose)}
    assert not [p.name for p in PAGES[1:] if p not in linked]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_commands_name_what_exists(page: Path):
    _, code = prose_and_code(page.read_text())
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    missing = [f"make {t}" for t in re.findall(r"\bmake ([a-z][\w-]*)", code) if t not in targets]
    missing += [f for f in re.findall(r"\b(?:python3?|bash) ((?:[\w.-]+/)*[\w.-]+\.(?:py|sh))\b", code)
                if not (REPO / f).exists()]
    missing += [f for f in re.findall(r"\b(configs/[\w.-]+\.yaml)", code) if not (REPO / f).exists()]
    assert not missing, f"{page.name} names what does not exist: {missing}"


COMMAND = re.compile(r"\bpython3? ((?:[\w.-]+/)*[\w-]+)\.py\b([^#\n]*)")


def commands(page: Path) -> list[tuple[str, list[str]]]:
    """The script and arguments of every `python SCRIPT.py ...` the page's code shows (a line ending in \\
    goes on), placeholders and shell left as written."""
    _, code = prose_and_code(page.read_text())
    code = re.sub(r"\\\n\s*", " ", code)
    return [(script, args.split()) for script, args in COMMAND.findall(code)]


def script_options(script: str) -> str:
    """The script's --help text, from its own parser (in-process: nothing runs past argument parsing)."""
    module = importlib.import_module(script)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main(["--help"])
    return out.getvalue()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_commands_use_options_and_config_keys_that_exist(page: Path):
    """Each --option a command passes is one its script takes, and each --set KEY=VALUE is a config key that
    takes that value, so a command copied from the manual does not stop at its arguments."""
    wrong, helps = [], {}
    for script, args in commands(page):
        if "/" in script or not (REPO / f"{script}.py").is_file():
            continue  # bench/ and tools/ scripts: test_commands_name_what_exists checks they exist
        helps.setdefault(script, script_options(script))
        for option in {a.split("=")[0] for a in args if re.fullmatch(r"--[a-z][\w-]*(=\S*)?", a)}:
            if not re.search(rf"(^|[\s,\[]){option}\b", helps[script]):
                wrong.append(f"{script}.py {option}")
        for i, arg in enumerate(args[:-1]):
            override = args[i + 1]
            if arg == "--set" and not re.search(r"[A-Z<]", override.split("=")[0]):
                try:
                    load_config(REPO / "configs" / "demo.yaml", [override])
                except UserError as err:
                    wrong.append(f"{script}.py --set {override}: {err}")
    assert not wrong, f"{page.name}: " + "; ".join(wrong)
