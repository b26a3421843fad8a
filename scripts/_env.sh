# Sourced by scripts/build-book and scripts/test: create or refresh the local virtual
# environment .venv from requirements.txt (exact pins) and install ntcourse into it.
# Re-installs only when requirements.txt or pyproject.toml changed (a hash stamp in .venv).
set -euo pipefail

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "error: no python3 found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "note: the pins in requirements.txt were resolved for Python 3.11; $PYTHON is $version." >&2
fi

stamp_now=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$stamp_now" ]; then
  echo "==> setting up .venv from requirements.txt (first time: about a minute)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$stamp_now" > .venv/.stamp
fi
export PATH="$PWD/.venv/bin:$PATH"
