#!/usr/bin/env bash
# ./test.sh [pytest args]   the whole suite: builds first when the sources changed, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"

./build.sh env
if [ "$(./build.sh fingerprint)" != "$(cat output/.source.sha256 2>/dev/null)" ] || ! ls dist/TA_escape_to_host-*.tar.gz >/dev/null 2>&1; then
  ./build.sh
else
  echo "test.sh: output/ is up to date with the sources; not rebuilding" >&2
fi

# The linter and strict types first (pyproject.toml holds their settings); a finding fails the run after pytest.
lint=0
.venv/bin/ruff check . || lint=$?
.venv/bin/mypy || lint=$?
[ $lint -eq 0 ] || echo "test.sh: ruff or mypy reported problems (above)" >&2

rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [ $rc -eq 5 ]; then
  # pytest's own closing line says "no tests ran"; say it again rather than fail or pass silently.
  echo "test.sh: pytest collected no tests (exit 5)" >&2
  rc=0
fi
[ $rc -ne 0 ] && exit $rc
exit $lint
