#!/usr/bin/env python3
"""The values table of charts/logbook/README.md, made from the chart's
values.yaml (keys, defaults, the comments above them) and
values.schema.json (types, allowed values, bounds).

    scripts/chart-readme.py           rewrite the table in the README
    scripts/chart-readme.py --check   exit 1, saying what differs, when the
                                      README's table is not what this makes

Both also check that the schema covers the values: every key of
values.yaml has a schema property, and every schema object that lists
its properties refuses others (additionalProperties: false), so that a
misspelt value fails `helm lint --strict` and `helm install` with a
message naming it. No YAML library: values.yaml is read as the subset it
is written in (block maps, scalars, `[]`/`{}`/`[a, b]`), and anything else
is refused with its line number.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "logbook"
BEGIN = "<!-- values:begin (scripts/chart-readme.py writes this table) -->"
END = "<!-- values:end -->"


class Problem(Exception):
    pass


def parse_values(text):
    """[(path, default text or None for a map, comment)] in file order, and
    the top-level section comments {key: comment}."""
    rows = []
    sections = {}
    stack = []  # (indent, path)
    pending = []  # the comment lines right above the next key
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            pending = []  # a comment a blank line separates from a key is not its
            continue
        if stripped.startswith("#"):
            pending.append(stripped[1:].strip())
            continue
        match = re.fullmatch(r"( *)([A-Za-z][A-Za-z0-9_]*):(?: (.*))?", line)
        if not match:
            raise Problem(f"values.yaml:{number}: not a `key: value` line: {line!r}")
        indent = len(match.group(1))
        key = match.group(2)
        value = (match.group(3) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (stack[-1][1] + "." if stack else "") + key
        comment = " ".join(c for c in pending)
        if value and not re.fullmatch(
            r'-?[0-9]+|true|false|"[^"]*"|\[\]|\{\}|\[[A-Za-z0-9_, ]+\]|[A-Za-z0-9_./:-]+', value
        ):
            raise Problem(f"values.yaml:{number}: a value this script does not read: {value!r}")
        if not stack and not value and comment and not comment.startswith("--"):
            # A section's comment: said above its table.
            sections[key] = comment
            comment = ""
        rows.append((path, value or None, comment))
        if not value:
            stack.append((indent, path))
        pending = []
    return rows, sections


def schema_at(schema, path):
    node = schema
    for part in path.split("."):
        props = node.get("properties")
        if props is None:
            return None, True  # inside a free-form object
        if part not in props:
            return None, False
        node = props[part]
    return node, False


def type_of(node):
    if node is None:
        return "any"
    if "oneOf" in node:
        return " or ".join(type_of(n) for n in node["oneOf"])
    kind = node.get("type", "any")
    if "enum" in node:
        return f"{kind}: " + ", ".join(f"`{v}`" for v in node["enum"])
    bounds = []
    if "minimum" in node:
        bounds.append(f"≥ {node['minimum']}")
    if "maximum" in node:
        bounds.append(f"≤ {node['maximum']}")
    return kind + (" " + ", ".join(bounds) if bounds else "")


def check_schema(schema, where="(root)"):
    problems = []
    if "properties" in schema and schema.get("additionalProperties") is not False:
        problems.append(f"values.schema.json: {where} lists its properties but does not refuse others (additionalProperties: false)")
    for key, node in schema.get("properties", {}).items():
        problems += check_schema(node, key if where == "(root)" else f"{where}.{key}")
    return problems


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def inline(rows, path):
    """The default of the map at `path`, in YAML's flow style, from the rows
    below it."""
    parts = []
    depth = path.count(".") + 1
    for child, default, _ in rows:
        if child.startswith(path + ".") and child.count(".") == depth:
            key = child.rsplit(".", 1)[1]
            parts.append(f"{key}: {default if default is not None else inline(rows, child)}")
    return "{" + ", ".join(parts) + "}"


def render(rows, sections, schema):
    problems = check_schema(schema)
    seen = set()
    tables = {}  # section (None: General) -> rows, in first-seen order
    header = "| Value | Type | Default | Description |\n|---|---|---|---|"
    for path, default, comment in rows:
        node, free = schema_at(schema, path)
        if free:
            continue  # a part of a free-form object's default: shown with it
        if node is None:
            problems.append(f"values.schema.json has no property for the value `{path}` of values.yaml")
            continue
        seen.add(path)
        top = path.split(".")[0]
        section = top if "properties" in node or "." in path else None
        table = tables.setdefault(section, [])
        if "properties" in node:
            if comment:
                table.append(f"| `{path}` | object | | {cell(comment.removeprefix('-- '))} |")
            continue
        description = comment.removeprefix("-- ").strip() or node.get("description", "")
        if not description:
            problems.append(f"`{path}` has no description: a `# --` comment above it in values.yaml, or one in values.schema.json")
        shown = default if default is not None else inline(rows, path)
        table.append(f"| `{path}` | {cell(type_of(node))} | `{cell(shown)}` | {cell(description)} |")
    out = [BEGIN, ""]
    order = [None] + [s for s in tables if s is not None]
    for section in order:
        if section not in tables:
            continue
        out.append(f"### {section}" if section else "### General")
        out.append("")
        if section in sections:
            out.append(sections[section])
            out.append("")
        out.append(header)
        out.extend(tables[section])
        out.append("")
    # Properties the schema allows that values.yaml leaves unset.
    unset = []

    def walk(node, prefix):
        for key, child in node.get("properties", {}).items():
            path = f"{prefix}{key}"
            if "properties" in child:
                walk(child, path + ".")
            elif path not in seen:
                unset.append((path, child))

    walk(schema, "")
    if unset:
        out.append("### Also accepted (unset by default)")
        out.append("")
        out.append(header)
        for path, node in unset:
            out.append(f"| `{path}` | {cell(type_of(node))} | unset | {cell(node.get('description', ''))} |")
        out.append("")
    out.append(END)
    return "\n".join(out), problems


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        sys.exit("usage: scripts/chart-readme.py [--check]")
    try:
        rows, sections = parse_values((CHART / "values.yaml").read_text())
    except Problem as e:
        sys.exit(f"chart-readme: {e}")
    schema = json.loads((CHART / "values.schema.json").read_text())
    table, problems = render(rows, sections, schema)
    if problems:
        sys.exit("chart-readme:\n  " + "\n  ".join(problems))
    readme_path = CHART / "README.md"
    readme = readme_path.read_text()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"chart-readme: {readme_path} has no {BEGIN} ... {END} block")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    wanted = head + table + tail
    if check:
        if wanted != readme:
            import difflib

            diff = difflib.unified_diff(
                readme.splitlines(), wanted.splitlines(), "README.md", "made from values.yaml", lineterm="", n=1
            )
            sys.exit(
                "chart-readme: charts/logbook/README.md's values table is not current; "
                "run `python3 scripts/chart-readme.py`:\n" + "\n".join(list(diff)[:40])
            )
        print("chart-readme: charts/logbook/README.md's values table is current")
    else:
        readme_path.write_text(wanted)
        print(f"chart-readme: wrote the values table of {readme_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
