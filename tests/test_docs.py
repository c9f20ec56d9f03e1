"""The documentation stays a front page and pages that match the code: the README short, every flag in docs/flags.md,
every relative link and picture found, every `python main.py ...` line in a code block made of real flags. Reads
text and parses flags; trains nothing."""

import copy
import glob
import os
import re
import shlex

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
FLAGS_PAGE = os.path.join(ROOT, "docs", "flags.md")
PAGES = [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
README_MAX_LINES = 250
SHELL_BLOCKS = ("", "bash", "sh", "shell", "console")  # fenced blocks whose lines are shell; ```python is code
HELP_ARGS = {"--help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}  # main.py and absl.app print and exit


def relative(path):
    return os.path.relpath(path, ROOT)


def code_blocks(path):
    """(language, first line number, lines) of each fenced block in a Markdown file."""
    blocks, block = [], None
    for number, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        if line.lstrip().startswith("```"):
            if block is None:
                block = (line.lstrip()[3:].strip(), number + 1, [])
            else:
                blocks.append(block)
                block = None
        elif block is not None:
            block[2].append(line.strip())
    assert block is None, f"{relative(path)}: a code block opened at line {block[1] - 1} is never closed"
    return blocks


def prose_lines(path):
    """(line number, line) outside fenced code blocks, inline code spans blanked."""
    fenced = False
    for number, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, re.sub(r"`[^`]*`", "``", line)


def anchors(path):
    """GitHub's heading anchors of a Markdown file: lower case, punctuation but - and _ dropped, spaces as -,
    repeats numbered."""
    seen, result = {}, set()
    for _, line in prose_lines(path):
        heading = re.match(r"#{1,6} +(.*?) *#* *$", line)
        if not heading:
            continue
        text = re.sub(r"[`*]", "", heading.group(1)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return result


def links(path):
    """(line number, target) of every Markdown link and picture outside code: [text](target), ![alt](target)."""
    for number, line in prose_lines(path):
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            yield number, target


def command_lines():
    """(page, line number, arguments after main.py) of every `python main.py ...` in the pages' shell blocks: lines
    joined at a trailing backslash, $VAR expanded from assignments earlier in the block, <placeholders> filled in,
    `#` comments dropped, one entry per command of a line (`&&`, `;`, `|`), redirections left out."""
    found = []
    for page in PAGES:
        for language, first, lines in code_blocks(page):
            if language not in SHELL_BLOCKS:
                continue
            variables, joined, start = {}, "", None
            for number, line in enumerate(lines, first):
                start = number if not joined else start
                if line.endswith("\\"):
                    joined += line[:-1] + " "
                    continue
                logical, joined = joined + line, ""
                if "main.py" not in logical and not re.match(r"\s*(export\s+)?[A-Za-z_]\w*=", logical):
                    continue  # output, a file listing, another program
                for name, value in variables.items():
                    logical = re.sub(r"\$(\{%s\}|%s\b)" % (name, name), lambda _: value, logical)
                logical = re.sub(r"<[A-Za-z_][\w ]*>", "PLACEHOLDER", logical)
                lexer = shlex.shlex(logical, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                tokens = list(lexer)
                assignment = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", tokens[-1], re.S) if tokens else None
                if assignment and tokens[:-1] in ([], ["export"]):
                    variables[assignment.group(1)] = assignment.group(2)
                    continue
                command = []
                for token in [*tokens, ";"]:
                    if token in (";", "&&", "||", "|", "&"):
                        main = [i for i, word in enumerate(command) if word.endswith("main.py")]
                        if main and main[0] > 0 and re.fullmatch(r"python3?", command[main[0] - 1]):
                            found.append((relative(page), start, command[main[0] + 1:]))
                        command = []
                    else:
                        command.append(token)
    return found


def without_redirections(arguments):
    kept, skip = [], False
    for token in arguments:
        if skip:
            skip = False
        elif re.fullmatch(r"\d?[<>]{1,2}&?", token):
            skip = True  # the file it names goes too
        else:
            kept.append(token)
    return kept


COMMANDS = command_lines()


@pytest.fixture(scope="module")
def defined(absl_flags):
    """The flags flags.py defines, written out or made from Config's fields."""
    return [flag.name for flag in absl_flags.flags_by_module_dict()["flags"]]


def test_the_readme_is_a_front_page():
    lines = open(README, encoding="utf-8").read().rstrip("\n").split("\n")
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move a section into docs/"


def test_every_flag_has_a_row_in_the_flags_page(defined):
    page = open(FLAGS_PAGE, encoding="utf-8").read()
    rows = re.findall(r"^\| `--(\w+)` \|", page, re.M)
    assert len(defined) > 25
    assert [name for name in defined if name not in rows] == []
    assert [name for name in rows if name not in defined] == []  # no row for a flag that is gone
    assert len(rows) == len(set(rows))


def test_every_relative_link_and_picture_is_found():
    missing = []
    for page in PAGES:
        for number, target in links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, fragment = target.partition("#")
            file = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            where = f"{relative(page)}:{number}: {target}"
            if not os.path.exists(file):
                missing.append(f"{where} (no such file)")
            elif fragment and (not file.endswith(".md") or fragment not in anchors(file)):
                missing.append(f"{where} (no such heading in {relative(file)})")
    assert missing == []


def test_pictures_in_docs_are_used():
    """Every picture in docs/images/ is shown by some page (a moved section took its pictures with it)."""
    used = {os.path.normpath(os.path.join(os.path.dirname(page), target))
            for page in PAGES for _, target in links(page)}
    pictures = glob.glob(os.path.join(ROOT, "docs", "images", "*"))
    assert [relative(picture) for picture in pictures if picture not in used] == []


def test_the_pages_hold_commands_to_check():
    assert len(COMMANDS) > 40
    assert {page for page, _, _ in COMMANDS} >= {"README.md", "docs/training.md", "docs/visualize.md"}


@pytest.mark.parametrize("page,line,arguments", COMMANDS, ids=[f"{page}:{line}" for page, line, _ in COMMANDS])
def test_every_documented_command_parses(absl_flags, page, line, arguments):
    """The line's flags exist and their values parse (absl: --noname booleans, --name=value, enums, numbers); it
    is not run, so modes and combinations are not checked."""
    arguments = [word for word in without_redirections(arguments) if word not in HELP_ARGS]
    values = copy.deepcopy(absl_flags)  # parse a copy: the module's FLAGS stay unparsed for the other tests
    rest = values(["main.py", *arguments])
    assert rest == ["main.py"], f"main.py refuses positional arguments: {rest[1:]}"


def test_paths_named_in_the_code_exist():
    """Help texts and comments point at docs pages that exist."""
    sources = [*glob.glob(os.path.join(ROOT, "*.py")), *glob.glob(os.path.join(ROOT, "dcgan_tf", "**", "*.py"),
                                                                  recursive=True),
               *glob.glob(os.path.join(ROOT, "benchmarks", "*.py")), os.path.join(ROOT, ".ci", "run")]
    missing = []
    for source in sources:
        for path in re.findall(r"\bdocs/[\w/.-]+\.md\b", open(source, encoding="utf-8").read()):
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(f"{relative(source)}: {path}")
    assert missing == []


def test_the_readme_test_command_is_the_one_ci_runs():
    ci = [line.strip() for line in open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8")
          if line.strip() and not line.lstrip().startswith("#")]
    text = open(README, encoding="utf-8").read()
    section = text[text.index("\n## Tests\n"):]
    block = section[section.index("```"):]
    command = block.split("\n")[1]
    assert command.split("&&")[-1].strip() == ci[-1] == "pytest"
