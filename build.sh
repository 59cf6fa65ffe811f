#!/usr/bin/env bash
# ./build.sh            build with ucc-gen, render content/, package dist/TA_escape_to_host-<version>.tar.gz, run AppInspect
# ./build.sh env        only create or refresh the virtual environments (.venv, .venv-appinspect, .venv-psa)
# ./build.sh replay ... run the add-on's analytics over raw log files (see README)
# ./build.sh simulate ...  run the enabled saved searches as the scheduler would, over time (docs/replay.md)
# ./build.sh bench      benchmark the custom commands
# ./build.sh docs [--check]          regenerate (or check) the README's detection list, docs/detections.md, docs/tunables.md
# ./build.sh setup-page [--check]    rewrite (or check) the setup page's generated tabs in globalConfig.json
# ./build.sh lint                    the SPL lint over everything the built add-on ships
# ./build.sh record-release VERSION  add the current saved-search and macro names to content/released.yml
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
APP=TA_escape_to_host
# The one import path of the tools (tools.*) and the engine (escape_engine, package/bin): for `python -m tools.X`
# and for ucc-gen, which runs additional_packaging.py. pyproject.toml sets the same two folders for pytest.
export PYTHONPATH="$ROOT:$ROOT/package/bin"

log() { echo "build.sh: $*" >&2; }

# venv NAME REQUIREMENTS: create it once, reinstall only when the pinned requirements change.
venv() {
  local dir=$1 req=$2 stamp=$1/.requirements.sha256
  local want; want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing $req into $dir"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --disable-pip-version-check -q -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$stamp"
}

environments() {
  venv .venv requirements/dev.txt
  venv .venv-appinspect requirements/appinspect.txt
  venv .venv-psa requirements/psa.txt
}

# Hash of every file the build reads (names and contents): ./test.sh rebuilds only when it changed. Plain find, not
# git, so an export without .git builds too; byte-compiled caches are not sources.
fingerprint() {
  find package content tools globalConfig.json additional_packaging.py requirements -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

version() { .venv/bin/python -c 'import json; print(json.load(open("globalConfig.json"))["meta"]["version"])'; }

build() {
  environments
  local v; v=$(version)
  log "building $APP $v"
  rm -rf output
  local config_before; config_before=$(sha256sum < globalConfig.json)
  # ucc-gen runs pip with the python3 on PATH: put the venv first so it is the venv's.
  PATH="$ROOT/.venv/bin:$PATH" .venv/bin/ucc-gen build --source package --ta-version "$v" --pip-version 26.2 \
      --python-binary-name "$ROOT/.venv/bin/python" > output.build.log 2>&1 || { cat output.build.log >&2; exit 1; }
  mv output.build.log output/build.log
  # Byte-code caches that running the tests left in package/ are not sources: never ship them (AppInspect fails on them).
  find "output/$APP" -name __pycache__ -type d -prune -exec rm -rf {} +
  # ucc-gen exits 0 even when additional_packaging.py raised: never package a build without the rendered confs.
  if grep -q "Uncaught exception" output/build.log || [ ! -f "output/$APP/default/macros.conf" ]; then
    log "ucc-gen failed (see output/build.log)"; grep -A30 "Uncaught exception" output/build.log >&2 || true; exit 1
  fi
  if [ "$(sha256sum < globalConfig.json)" != "$config_before" ]; then
    log "ucc-gen rewrote globalConfig.json: commit it in the form the build writes (git diff globalConfig.json)"; exit 1
  fi
  mkdir -p dist
  rm -f "dist/$APP-$v.tar.gz"
  .venv/bin/ucc-gen package --path "output/$APP" -o dist > output/package.log 2>&1 || { cat output/package.log >&2; exit 1; }
  [ -f "dist/$APP-$v.tar.gz" ] || { log "ucc-gen package did not write dist/$APP-$v.tar.gz"; exit 1; }
  log "packaged dist/$APP-$v.tar.gz"
  appinspect "dist/$APP-$v.tar.gz"
  fingerprint > output/.source.sha256
}

appinspect() {
  local rc=0
  .venv-appinspect/bin/splunk-appinspect inspect "$1" --mode precert --skip-trusted-libraries-update --ci \
      --data-format json --output-file dist/appinspect.json > dist/appinspect.out 2>&1 || rc=$?
  .venv/bin/python -m tools.appinspect_summary dist/appinspect.json >&2
  case $rc in
    0|103) log "AppInspect report: dist/appinspect.json (exit $rc: no failure, no future failure)";;
    *) log "AppInspect failed (exit $rc); report: dist/appinspect.json, log: dist/appinspect.out"; exit 1;;
  esac
}

# Build only when a source changed since the last build (./test.sh does the same).
fresh_build() {
  environments
  if [ "$(fingerprint)" != "$(cat output/.source.sha256 2>/dev/null)" ] || [ ! -d "output/$APP/bin" ]; then build; fi
}

case "${1:-}" in
  "") build
      # A newcomer sees alerts a minute after cloning: every detection over its own bundled samples (stderr).
      .venv/bin/python -m tools.replay --samples;;
  env) environments;;
  fingerprint) fingerprint;;
  replay) shift; fresh_build >&2; exec .venv/bin/python -m tools.replay "$@";;
  simulate) shift; fresh_build >&2; exec .venv/bin/python -m tools.simulate "$@";;
  bench) shift; fresh_build >&2; exec .venv/bin/python -m tools.bench "$@";;
  # The generated docs, then docs/example-alert.md from a replay of the fresh build (with no arguments: a full rewrite).
  docs) shift; environments; .venv/bin/python -m tools.docs "$@"
        if [ $# -eq 0 ]; then fresh_build >&2; exec .venv/bin/python -m tools.example_alert; fi;;
  setup-page) shift; environments; exec .venv/bin/python -m tools.setup_page "$@";;
  lint) shift; fresh_build >&2; exec .venv/bin/python -m tools.contentlint "$@";;
  record-release) shift; environments; exec .venv/bin/python -m tools.release --record-release "$@";;
  *) log "unknown command '$1' (use: ./build.sh [env|replay|simulate|bench|docs|setup-page|lint|record-release])"; exit 2;;
esac
