"""The documentation stays true: the README's two commands, every environment variable in the operator
guide, every sub-command in the user guide, and every relative link in README.md and docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.config import ENV_VARS
from commands import default_registry

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
USER_GUIDE = DOCS / "user-guide.md"
OPERATOR_GUIDE = DOCS / "operator-guide.md"
ARCHITECTURE = DOCS / "architecture.md"
# read by the sandbox and by the helloworld service, not by the bot's configuration
OTHER_VARS = ("HELLO_SANDBOX_RPS", "HELLO_SANDBOX_MANIFESTS", "HELLO_VERSION", "HELLO_DRAIN_SECONDS",
              "HELLO_METRICS", "HELLO_FAULT_ERROR_RATE", "HELLO_FAULT_LATENCY_MS", "PROMETHEUS_MULTIPROC_DIR")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation gone, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading reads as its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 … for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (a whole heading line, e.g. "## Configuration") up to the next heading
    of the same or a higher level."""
    text = path.read_text()
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"^{re.escape(heading)}[ \t]*$", text, re.M)
    assert match, f"{path.relative_to(ROOT)} has no heading {heading!r}"
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}}[ \t]", FENCE.sub(lambda m: " " * len(m.group(0)), rest), re.M)
    return rest[:end.start()] if end else rest


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file that lead nowhere: a missing file, or a missing heading."""
    problems = []
    for match in LINK.finditer(prose(path.read_text())):
        target = match.group(1)
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no file {file_part}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {linked.name}")
        elif anchor and linked.suffix != ".md":
            problems.append(f"{target}: an anchor into a file that is not Markdown")
    return problems


# ------------------------------------------------------------------------------------------- the README


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = README.read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block and readme.index(block.group(0)) < 200
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./dev.sh sandbox", "./dev.sh test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec ./dev.sh test")
    dev = (ROOT / "dev.sh").read_text()
    for command in commands:
        name = command.split()[1]
        assert re.search(rf"^\s*{name}\)", dev, re.M), f"dev.sh has no `{name}` command"
        assert re.search(rf"^#\s+\./dev\.sh {name}\b", dev, re.M), f"dev.sh's usage does not name `{name}`"


def test_readme_leads_to_every_guide() -> None:
    linked = {match.group(1).partition("#")[0] for match in LINK.finditer(prose(README.read_text()))}
    for guide in (USER_GUIDE, OPERATOR_GUIDE, ARCHITECTURE):
        assert guide.is_file(), f"{guide.relative_to(ROOT)} is missing"
        assert str(guide.relative_to(ROOT)) in linked, f"README.md does not link to {guide.relative_to(ROOT)}"


def test_the_readme_stays_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 150, f"README.md has {lines} lines: the reference belongs in docs/"


# ------------------------------------------------------------------------------------------- the guides


def test_every_environment_variable_is_in_the_operator_guide() -> None:
    reference = section(OPERATOR_GUIDE, "## Configuration")
    for name in ENV_VARS:
        assert f"`{name}`" in reference, f"{name} is not in the operator guide's configuration reference"
    guide = OPERATOR_GUIDE.read_text()
    for name in OTHER_VARS:
        assert f"`{name}`" in guide, f"{name} is not documented in the operator guide"


def test_every_sub_command_is_in_the_user_guides_command_reference() -> None:
    reference = section(USER_GUIDE, "## Commands")
    rows = [line for line in reference.splitlines() if line.startswith("| `/hello ")]
    for command in default_registry():
        assert any(row.startswith(f"| `/hello {command.name}") for row in rows), \
            f"/hello {command.name} has no row in the user guide's command reference"


def test_procfile_and_operator_guide_agree_on_the_start_command() -> None:
    web = (ROOT / "Procfile").read_text().split(":", 1)[1].strip()
    assert web == "python -m bot serve --port $PORT"
    running = section(OPERATOR_GUIDE, "## Running the bot")
    assert "python -m bot serve [--port N]" in running
    assert f"`web: {web}`" in running


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path: Path) -> None:
    assert not broken_links(path), f"{path.relative_to(ROOT)}: " + "; ".join(broken_links(path))


def test_the_link_check_sees_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A heading: with `code`\n\n## A heading: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-heading-with-code) [again](other.md#a-heading-with-code-1) [self](#page)\n"
        "[web](https://example.com/nowhere) `[code](missing.md)`\n\n"
        "```\n[fenced](missing.md)\n```\n\n"
        "[no file](missing.md) [no heading](other.md#nowhere) [here](#nowhere)\n"
    )
    assert broken_links(page) == [
        "missing.md: no file missing.md",
        "other.md#nowhere: no heading #nowhere in other.md",
        "#nowhere: no heading #nowhere in page.md",
    ]
