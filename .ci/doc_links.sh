#!/usr/bin/env bash
# Every link in README.md and docs/*.md that stays in the repository resolves: `](#anchor)` to a
# heading of the same file, `](path)` to a tracked file or directory, `](path#anchor)` to a
# heading of that Markdown file. Anchors are made the way GitHub makes them (lower case,
# punctuation dropped, spaces to hyphens, `-1`, `-2` … for repeats). Links inside code blocks
# and inline code are not links and are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - README.md docs/*.md <<'PY'
import os, re, sys

def strip_code(text):
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)

def anchors(path):
    found, seen = set(), {}
    fence = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
            continue
        m = None if fence else re.match(r"^#{1,6} (.*)", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found

bad = 0
checked = 0
for path in sys.argv[1:]:
    text = strip_code(open(path, encoding="utf-8").read())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto: …: outside the repository
        checked += 1
        file, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(dest):
            print(f"{path}: broken link {target}: no {dest}")
            bad += 1
        elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
            print(f"{path}: broken link {target}: no heading #{anchor} in {dest}")
            bad += 1
print(f"{checked} links checked, {bad} broken")
sys.exit(1 if bad else 0)
PY
