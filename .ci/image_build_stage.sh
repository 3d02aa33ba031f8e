#!/usr/bin/env bash
# The Dockerfile's build stage, replayed without a container engine (no base image can be pulled
# here, so `docker build` cannot run in CI). hadolint checks the Dockerfile's form; this checks
# that the build stage's COPY lines bring everything its cargo command needs (a `[[bench]]`
# declared in Cargo.toml, an include_str! target, a migration directory ...):
#   1. the build context: the files git tracks (so a file nobody committed cannot make this
#      pass), as they are in the work tree, minus what .dockerignore excludes;
#   2. the COPY lines of the build stage (from `FROM … AS build` to the next FROM), parsed from
#      the Dockerfile, copy their sources out of that context into a scratch directory, as
#      Docker would into the WORKDIR; a source that is not in the context fails, like Docker's
#      "not found";
#   3. the cargo command of the stage's RUN line, parsed from it too, runs in the scratch
#      directory; then the binary the RUN line copies out of target/ must exist.
#
# CARGO_TARGET_DIR is the repository's own target/ (IMAGE_BUILD_TARGET_DIR overrides it), so the
# release build of the dependencies, which .ci/contract.sh needs anyway, is shared: only the
# crate itself is recompiled, because its sources are fresh copies with fresh mtimes. Cargo keys
# the crate's artifacts by its path relative to the workspace root, the same here and in the
# repository, so this build replaces the repository's release artifacts of latchkey with ones
# built from the same tracked sources, and .ci/contract.sh's `cargo build --release` then finds
# them fresh. Measured on a loaded 2-core machine: 120-130 s with the dependencies built (about 20
# minutes without), and 8 s to fail when a COPY line is missing. The scratch directory is
# outside the repository, as /app is in the image, so no Cargo.toml above it can be taken for a
# workspace root; it is left in place for inspection and emptied at the next run.
#
# Limits:
#   - .dockerignore: patterns are matched like Docker does (relative to the context root; `*`
#     and `?` do not cross `/`; `**` spans directories; a pattern matching a directory excludes
#     everything under it; `!` re-includes; the last matching pattern wins), but this is a
#     reimplementation, not Docker's code: exotic escapes may differ.
#   - COPY: only plain context sources (files, directories, `*`/`?` globs), shell or JSON form,
#     destinations relative to WORKDIR or absolute under it. `--from`, URLs and heredocs fail
#     the check rather than being skipped; --chown/--chmod/--link are ignored (no effect on a
#     build as root).
#   - RUN: shell form only. Only the one `cargo …` command among its `&&`-joined commands runs;
#     the others (copying the binary out of the cache mount) do not, but the binary they copy
#     must have been built. ARG/ENV lines in the stage fail the check (it has none to apply).
#   - The compiler is the local toolchain, not the image's `rust:1` (CI checks the newest stable
#     anyway); a toolchain-specific failure in the image is out of reach.
#
# Environment: IMAGE_BUILD_TARGET_DIR (default: target/ of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TERM_COLOR=never

scratch="${TMPDIR:-/tmp}/latchkey-image-build-stage.$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
target_dir=${IMAGE_BUILD_TARGET_DIR:-$ROOT/target}

# Prints the path (relative to the target directory) of the binary the RUN line copies out, then
# the words of the cargo command, each on a line of its own.
plan=$(python3 - "$ROOT" "$scratch" <<'PY'
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

root, scratch = sys.argv[1], sys.argv[2]


def fail(message):
    sys.exit(f"image_build_stage: {message}")


# --- .dockerignore ----------------------------------------------------------------------------

def pattern_regex(pattern):
    """A Docker ignore pattern (already cleaned) as a regex over slash-separated paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                fail(f".dockerignore: unterminated [ in {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("!") or body.startswith("^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignore_rules():
    rules = []
    try:
        lines = open(os.path.join(root, ".dockerignore"), encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return rules
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        if keep:
            line = line[1:].strip()
        # Docker cleans each pattern like filepath.Clean and drops a leading slash.
        line = os.path.normpath(line).lstrip("/")
        if line == ".":
            continue
        rules.append((keep, pattern_regex(line)))
    return rules


def excluded(path, rules):
    # A pattern matching the path or any directory above it applies; the last one wins.
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for keep, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not keep
    return verdict


tracked = subprocess.run(
    ["git", "ls-files", "-z", "--cached"], cwd=root, check=True, capture_output=True
).stdout.decode().split("\0")
rules = ignore_rules()
context = sorted(
    path for path in tracked
    if path and os.path.isfile(os.path.join(root, path)) and not excluded(path, rules)
)


# --- the build stage of the Dockerfile --------------------------------------------------------

def instructions(text):
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current:
            keyword, _, rest = current.partition(" ")
            result.append((keyword.upper(), rest.strip()))
        current = ""
    if current:
        fail("the Dockerfile ends in a continuation line")
    return result


stage, in_build = [], False
for keyword, args in instructions(open(os.path.join(root, "Dockerfile"), encoding="utf-8").read()):
    if keyword == "FROM":
        if in_build:
            break
        words = args.split()
        in_build = len(words) >= 3 and words[-2].upper() == "AS" and words[-1] == "build"
        continue
    if in_build:
        stage.append((keyword, args))
if not stage:
    fail("no `FROM … AS build` stage in the Dockerfile")

workdir = "/"
copies, runs = [], []
for keyword, args in stage:
    if keyword == "WORKDIR":
        workdir = os.path.normpath(os.path.join(workdir, args))
    elif keyword in ("COPY", "ADD"):
        if keyword == "ADD" or args.startswith("<<"):
            fail(f"{keyword} {args}: only plain COPY lines can be replayed")
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            fail(f"COPY {args}: --from cannot be replayed")
        words = [word for word in words if not word.startswith("--")]
        if len(words) < 2:
            fail(f"COPY {args}: needs a source and a destination")
        copies.append((words[:-1], words[-1], workdir, args))
    elif keyword == "RUN":
        runs.append(args)
    elif keyword in ("ARG", "ENV"):
        fail(f"{keyword} in the build stage is not applied by this script; teach it first")

if workdir == "/":
    fail("the build stage sets no WORKDIR")


# --- replay the COPY lines --------------------------------------------------------------------

if os.path.isdir(scratch):
    shutil.rmtree(scratch)
os.makedirs(scratch)


def in_scratch(path, copy_workdir, line):
    absolute = os.path.normpath(os.path.join(copy_workdir, path))
    if absolute != workdir and not absolute.startswith(workdir + "/"):
        fail(f"COPY {line}: destination {path} is outside the WORKDIR {workdir}")
    return os.path.join(scratch, os.path.relpath(absolute, workdir))


def put(source, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    # Copy the contents only, not the times: fresh mtimes make cargo recompile the crate from
    # these files instead of trusting artifacts of an earlier build.
    shutil.copyfile(os.path.join(root, source), destination)


for sources, destination, copy_workdir, line in copies:
    into_dir = destination.endswith("/") or len(sources) > 1
    for source in sources:
        source = os.path.normpath(source).lstrip("/")
        if source == ".":
            matches = [("", context)]
        elif any(char in source for char in "*?["):
            regex = pattern_regex(source)
            tops = sorted({
                "/".join(path.split("/")[:source.count("/") + 1])
                for path in context
                if regex.fullmatch("/".join(path.split("/")[:source.count("/") + 1]))
            })
            matches = [(top, [p for p in context if p == top or p.startswith(top + "/")])
                       for top in tops]
            into_dir = True
        else:
            matches = [(source, [p for p in context if p == source or p.startswith(source + "/")])]
        matches = [(top, files) for top, files in matches if files]
        if not matches:
            fail(f"COPY {line}: {source} is not in the build context "
                 "(not tracked by git, or excluded by .dockerignore)")
        for top, files in matches:
            for path in files:
                if path == top:
                    # A file: into the destination directory, or as the destination itself.
                    name = os.path.basename(path)
                    to = os.path.join(destination, name) if into_dir else destination
                    put(path, in_scratch(to, copy_workdir, line))
                else:
                    # A directory: its contents, not the directory itself, go to the destination.
                    inner = os.path.relpath(path, top) if top else path
                    put(path, in_scratch(os.path.join(destination, inner), copy_workdir, line))


# --- the cargo command of the RUN line --------------------------------------------------------

cargo = []
for run in runs:
    command = run
    # Drop the RUN flags (--mount=…, --network=…); the cache mounts are what CARGO_TARGET_DIR
    # stands in for.
    while command.startswith("--"):
        command = command.partition(" ")[2].lstrip()
    for part in command.split("&&"):
        words = shlex.split(part)
        if words and words[0] == "cargo":
            cargo.append((words, command))
if len(cargo) != 1:
    fail(f"expected one cargo command in the build stage's RUN lines, found {len(cargo)}")
words, command = cargo[0]

# The binary the RUN line copies out of the target directory, e.g. `cp target/release/latchkey …`.
binary = None
for part in command.split("&&"):
    copy = shlex.split(part)
    if copy and copy[0] == "cp" and len(copy) == 3 and copy[1].startswith("target/"):
        binary = copy[1][len("target/"):]
if binary is None:
    fail("the cargo RUN line copies no binary out of target/")

print(binary)
print("\n".join(words))
PY
)
mapfile -t argv <<<"$plan"
binary=${argv[0]}
argv=("${argv[@]:1}")

echo "image_build_stage: build context copied to $scratch:"
(cd "$scratch" && find . -type f | sed 's|^\./||' | sort | awk -F/ '{print "  " ($2 ? $1 "/" : $1)}' | uniq -c)
echo "image_build_stage: ${argv[*]}  (CARGO_TARGET_DIR=$target_dir)"

# The built binary's mtime proves this run produced it, not an earlier build of the repository.
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
started=$SECONDS
(cd "$scratch" && CARGO_TARGET_DIR="$target_dir" "${argv[@]}")
if [[ ! "$target_dir/$binary" -nt "$marker" ]]; then
    echo "image_build_stage: the build did not produce target/$binary" >&2
    exit 1
fi
echo "image_build_stage: OK: the build stage builds target/$binary in $((SECONDS - started)) s"
