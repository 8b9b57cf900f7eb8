"""The docs: every relative link and anchor resolves, no table is broken in two, and the
configuration table in docs/reference.md names exactly the environment variables the code reads."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE = ROOT / "docs" / "reference.md"

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r"""<a\s+[^>]*?(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if fenced is None:
                fenced = m.group(1)
            elif m.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text: the rendered text lower-cased, punctuation other than
    `-` and `_` removed (letters and digits of every script kept), spaces turned into `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    kept = "".join(c for c in text if c.isalnum() or c in "-_ ")
    return kept.replace(" ", "-")


def anchors(text):
    """Every anchor a markdown text defines: heading slugs (duplicates get -1, -2, …) and
    explicit <a id>/<a name> anchors."""
    found, seen = set(), {}
    for _, line in prose_lines(text):
        for a in EXPLICIT_ANCHOR.findall(line):
            found.add(a)
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(text):
    """(line number, target) of every inline link, image and reference definition, outside code."""
    for number, line in prose_lines(text):
        line = CODE_SPAN.sub("", line)
        for target in INLINE_LINK.findall(line):
            yield number, target
        m = REFERENCE_DEF.match(line)
        if m:
            yield number, m.group(1)


def broken_links(path, text, read=lambda p: p.read_text(encoding="utf-8")):
    """Descriptions of the relative links in `text` (the contents of `path`) that do not resolve."""
    problems = []
    for number, target in links(text):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        where = f"{path.name}:{number}: {target}"
        if file_part:
            dest = (path.parent / file_part).resolve()
            if not dest.exists():
                problems.append(f"{where}: no such file")
                continue
        else:
            dest = path
        if not anchor:
            continue
        if dest.suffix.lower() != ".md":
            continue
        dest_text = text if dest == path else read(dest)
        if anchor not in anchors(dest_text):
            problems.append(f"{where}: no heading or anchor #{anchor} in {dest.name}")
    return problems


def cells(line):
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return re.split(r"(?<!\\)\|", row)


def is_separator(line):
    return all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells(line))


def table_blocks(text):
    """Runs of consecutive `|` lines: (first line number, lines, line before the run)."""
    blocks, current, before, previous = [], [], None, None
    for number, line in prose_lines(text):
        if line.lstrip().startswith("|"):
            if not current:
                start, before = number, previous
            current.append(line)
        elif current:
            blocks.append((start, current, before))
            current = []
        previous = line
    if current:
        blocks.append((start, current, before))
    return blocks


def broken_tables(name, text):
    """Tables broken in two: a run of `|` rows without a header separator that follows a line of
    text, with the column count of the table before it (the rows after the text render as text)."""
    problems, last = [], None
    for start, rows, before in table_blocks(text):
        has_header = len(rows) > 1 and is_separator(rows[1])
        width = len(cells(rows[0]))
        if has_header:
            last = (start, width)
            continue
        if last and width == last[1] and before is not None and before.strip():
            problems.append(
                f"{name}:{start}: table rows resume after text; the table of line {last[0]} is broken in two"
            )
    return problems


# --- environment variables -------------------------------------------------------------------

# How the code reads an environment variable: std::env::var / var_os, or the configuration
# module's helpers called with the literal name.
ENV_READ = re.compile(r"\b(?:var|var_os|get|required|ms|secs|count|whole|flag|text)\(\s*\"([A-Z][A-Z0-9_]*)\"")
# Read in another shape: `["SSL_CERT_FILE", "SSL_CERT_DIR"].map(|k| std::env::var_os(k) …)` in
# shared/src/app.rs (each must still appear as a literal in the code, see below).
READ_INDIRECTLY = {"SSL_CERT_FILE", "SSL_CERT_DIR"}
CFG_TEST = re.compile(r"^#\[cfg\(test\)\]", re.M)


def code_sources():
    dirs = [ROOT / "shared" / "src", ROOT / "admin" / "src", *sorted((ROOT / "functions").glob("*/src"))]
    for d in dirs:
        for path in sorted(d.rglob("*.rs")):
            if path.name.endswith("_tests.rs") or "tests" in path.relative_to(d).parts:
                continue
            text = path.read_text(encoding="utf-8")
            m = CFG_TEST.search(text)
            yield path, text[: m.start()] if m else text


def variables_read():
    return {name for _, text in code_sources() for name in ENV_READ.findall(text)}


def section(text, title):
    """The lines of the `## title` section."""
    out, inside = [], False
    for _, line in prose_lines(text):
        if re.match(r"^##\s", line):
            inside = line.strip("# ").strip() == title
            continue
        if inside:
            out.append(line)
    return "\n".join(out)


def variables_documented(text):
    """The backticked upper-case names in the first column of the configuration table(s)."""
    names = set()
    for _, rows, _ in table_blocks(section(text, "Configuration")):
        if len(rows) < 2 or not is_separator(rows[1]):
            continue
        for row in rows[2:]:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells(row)[0]))
    return names


# --- tests -------------------------------------------------------------------------------------


def test_links_and_anchors_resolve():
    problems = [p for doc in DOCS for p in broken_links(doc, doc.read_text(encoding="utf-8"))]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_no_table_is_broken_in_two():
    problems = [p for doc in DOCS for p in broken_tables(doc.name, doc.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


def test_configuration_table_names_every_variable_the_code_reads():
    read = variables_read()
    code = "\n".join(text for _, text in code_sources())
    for name in READ_INDIRECTLY:
        assert f'"{name}"' in code, f"{name} is no longer read by the code: drop it from READ_INDIRECTLY"
    read |= READ_INDIRECTLY
    documented = variables_documented(REFERENCE.read_text(encoding="utf-8"))
    assert len(read) > 20 and len(documented) > 20, (sorted(read), sorted(documented))
    missing, unread = sorted(read - documented), sorted(documented - read)
    assert not missing and not unread, (
        "docs/reference.md, Configuration:\n"
        f"  read by the code, missing from the table: {missing}\n"
        f"  in the table, read by no code: {unread}"
    )


# --- the checkers themselves ---------------------------------------------------------------------


def test_slugs_follow_github():
    assert slug("Official Accounts: `/cgi-bin/token` or `stable_token`") == "official-accounts-cgi-bintoken-or-stable_token"
    assert slug("WeChat's API hosts") == "wechats-api-hosts"
    assert slug("Managing apps: `wxinvoice-admin`") == "managing-apps-wxinvoice-admin"
    assert slug("发票 核销 (CLOSURE)") == "发票-核销-closure"
    assert slug("See [the runbook](operator.md)") == "see-the-runbook"
    assert anchors("# A\n## A\n### A\n```\n# A\n```\n") == {"a", "a-1", "a-2"}
    assert "kept" in anchors('<a id="kept"></a>\n') and "old" in anchors("<a name='old'></a>\n")


def test_link_checker_reports_what_does_not_resolve(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Deploying, step by step\n", encoding="utf-8")
    page = tmp_path / "page.md"
    text = (
        "# Page\n\n## Setup\n\n"
        "[ok](#setup) [ok](other.md#deploying-step-by-step) [ok](other.md) [ext](https://x.invalid/#y)\n"
        "[bad anchor](#set-up) [bad file](missing.md) [bad remote anchor](other.md#deploy)\n"
        "`[in code](#nowhere)`\n```\n[in a fence](#nowhere)\n```\n"
    )
    page.write_text(text, encoding="utf-8")
    problems = broken_links(page, text)
    assert len(problems) == 3, problems
    assert any("#set-up" in p for p in problems)
    assert any("missing.md" in p for p in problems)
    assert any("other.md#deploy" in p for p in problems)


def test_table_checker_reports_a_table_broken_in_two():
    broken = "| a | b |\n|---|---|\n| 1 | 2 |\n\nA paragraph.\n| 3 | 4 |\n"
    assert len(broken_tables("t.md", broken)) == 1
    two_tables = "| a | b |\n|---|---|\n| 1 | 2 |\n\nText.\n\n| c | d |\n|---|---|\n| 3 | 4 |\n"
    assert broken_tables("t.md", two_tables) == []


def test_variable_checker_reads_the_first_column_of_the_configuration_section():
    text = (
        "# R\n\n## Configuration\n\n| Variable | Default | Meaning |\n|---|---|---|\n"
        "| `A_ONE`, `A_TWO` | `X` | see `NOT_THIS` |\n\n| Variable | Default | Meaning |\n|---|---|---|\n"
        "| `B_ONE` | 1 | b |\n\n## Endpoints\n\n| x | y |\n|---|---|\n| `C_ONE` | c |\n"
    )
    assert variables_documented(text) == {"A_ONE", "A_TWO", "B_ONE"}
    code = 'let a = get("WECHAT_APPID"); std::env::var_os("RUST_LOG"); ms(\n  "REFRESH_WAIT_MS", d); h.get("x")'
    assert set(ENV_READ.findall(code)) == {"WECHAT_APPID", "RUST_LOG", "REFRESH_WAIT_MS"}
