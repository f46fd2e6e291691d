#!/usr/bin/env python3
"""Checks docs/json-schema.md against the code that writes the JSON, so the page cannot drift from
it: every schema name in cli/json_schema.h is documented, and every key the report walks write
(cli/diff_report.c, cli/cmd_summary.c: the emit_* calls with a literal key) and the shared helpers
write (cli/cli.c: the same) is named in backticks in the page, in the section of its document or in
the conventions; and every key a runtime gives cli to write (analyze/runtimes/: its garbage
classes' key and member, its sections' fields) is named somewhere in the page. Exits 1, naming
what is missing, when the page lacks any.

Usage: check_json_schema.py [SOURCE_ROOT]"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
EMIT_KEY = re.compile(r'\bemit_(?:string|uint|int|double|bool|null|string_or_null|uint_or_null|'
                      r'object_begin|array_begin|kv_count|kv_bytes)\(\s*e,\s*"([^"]+)"')
HELPER_KEY = re.compile(r'\b(?:json_key\(\s*json|cli_json_steps\(\s*e),\s*"([^"]+)"')
RUNTIME_KEY = re.compile(r'\.json_(?:key|member)\s*=\s*"([^"]+)"|'
                         r'\badd_field\(\s*&?\w+,\s*RUNTIME_FIELD_\w+,\s*"([^"]+)"')
SCHEMA = re.compile(r'#define\s+HEAPSNAP_SCHEMA_\w+\s+"([^"]+)"')


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def sections(page):
    """The page's "## " sections by title; the text before the first is ""."""
    out, title = {"": []}, ""
    for line in page.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        out[title].append(line)
    return {name: "\n".join(lines) for name, lines in out.items()}


def named(key, text):
    """Whether `key` is written in backticks in `text`, alone or as part of a dotted name or a
    list's (`heap.live_count`, `retainers[]`)."""
    return re.search(r"`[^`\n]*(?<![\w])" + re.escape(key) + r"(?![\w])[^`\n]*`", text) is not None


def main():
    page = read("docs/json-schema.md")
    parts = sections(page)
    conventions = parts.get("Conventions", "")
    missing = []
    for schema in SCHEMA.findall(read("cli/json_schema.h")):
        if f"`{schema}`" not in page:
            missing.append(f"the schema {schema}")
    documents = {"cli/diff_report.c": "heapsnap.diff/1", "cli/cmd_summary.c": "heapsnap.summary/1"}
    for source, schema in documents.items():
        section = next((text for title, text in parts.items() if schema in title), "")
        for key in sorted(set(EMIT_KEY.findall(read(source)))):
            if not named(key, section) and not named(key, conventions):
                missing.append(f"{schema}: {key} ({source})")
    helpers = read("cli/cli.c")
    for key in sorted(set(HELPER_KEY.findall(helpers)) | set(EMIT_KEY.findall(helpers))):
        if not named(key, conventions):
            missing.append(f"conventions: {key} (cli/cli.c)")
    for directory, _, files in os.walk(os.path.join(ROOT, "analyze", "runtimes")):
        for name in sorted(f for f in files if f.endswith(".c")):
            source = os.path.relpath(os.path.join(directory, name), ROOT)
            for match in RUNTIME_KEY.findall(read(source)):
                key = match[0] or match[1]
                if not named(key, page):
                    missing.append(f"{key} ({source})")
    for what in missing:
        print(f"docs/json-schema.md does not document {what}")
    print(f"check_json_schema: {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
