#!/usr/bin/env bash
# Build (when sources changed) and run postmaster.
#   ./run.sh <postmaster arguments>   e.g. ./run.sh start -D ./data
#   ./run.sh test [--long]             the whole test suite (--long adds soak tests)
#   ./run.sh bench                     benchmarks; figures go to docs/benchmarks.md by hand
#   ./run.sh build                     build only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$ROOT/out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

need_build() {
  [ -f "$OUT/.stamp" ] || return 0
  [ -n "$(find "$ROOT/src" "$ROOT/Directory.Build.props" "$ROOT/Directory.Packages.props" -newer "$OUT/.stamp" \
      \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.json' \) -print -quit 2>/dev/null)" ]
}

build() {
  if need_build; then
    echo "run.sh: building (Release, ReadyToRun) into out/" >&2
    local log; log="$(mktemp)"
    if ! { dotnet publish "$ROOT/src/Postmaster/Postmaster.csproj" -c Release -r linux-x64 --self-contained false \
             -p:PublishReadyToRun=true -o "$OUT" -nologo -v quiet >"$log" 2>&1 &&
           dotnet publish "$ROOT/src/Backend/Backend.csproj" -c Release -r linux-x64 --self-contained false \
             -p:PublishReadyToRun=true -o "$OUT" -nologo -v quiet >>"$log" 2>&1; }; then
      cat "$log" >&2; rm -f "$log"; echo "run.sh: build failed" >&2; exit 1
    fi
    rm -f "$log"
    touch "$OUT/.stamp"
  fi
}

case "${1:-}" in
  build)
    build ;;
  test)
    shift
    build
    # Long tests (the crash soak) run with --long, and in CI (CI=true), where they fit the time budget.
    filter="Category!=Long"
    if [ "${1:-}" = "--long" ]; then filter=""; shift; fi
    if [ "${CI:-}" = "true" ]; then filter=""; fi
    export POSTMASTER_OUT="$OUT"
    dotnet build "$ROOT/tests/TestChild/TestChild.csproj" -c Release -nologo -v quiet -o "$ROOT/out/testchild" >/dev/null
    set +e
    dotnet test "$ROOT/tests/Postmaster.Tests/Postmaster.Tests.csproj" -c Release -nologo \
      ${filter:+--filter "$filter"} --logger "console;verbosity=normal" "$@" 2>&1 | tee "$OUT/test.log" | grep -v -E '^\s*$'
    rc=${PIPESTATUS[0]}
    set -e
    # The plain closing line CI reads, taken from the runner's own summary ("Passed: N" lines at normal
    # verbosity, or "Failed!  - Failed: N, Passed: N, Skipped: N" at minimal).
    count() { grep -E "^\s*$1: +[0-9]+" "$OUT/test.log" | tail -1 | grep -oE '[0-9]+' | tail -1; }
    passed="$(count Passed || true)"; failed="$(count Failed || true)"; skipped="$(count Skipped || true)"
    if [ -z "$passed$failed" ]; then
      summary="$(grep -E '(Passed|Failed)! +- ' "$OUT/test.log" | tail -1 || true)"
      passed="$(sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' <<<"$summary")"
      failed="$(sed -n 's/.*Failed: *\([0-9]*\).*/\1/p' <<<"$summary")"
      skipped="$(sed -n 's/.*Skipped: *\([0-9]*\).*/\1/p' <<<"$summary")"
    fi
    echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
    # A run that executed nothing is a failure, not a success.
    if [ "$rc" = 0 ] && [ "${passed:-0}" = 0 ]; then echo "run.sh: no test was executed" >&2; rc=1; fi
    exit "$rc" ;;
  bench)
    shift
    build
    export POSTMASTER_OUT="$OUT"
    dotnet publish "$ROOT/bench/Hello/Hello.csproj" -c Release -r linux-x64 --self-contained false \
      -p:PublishReadyToRun=true -o "$OUT/bench-hello" -nologo -v quiet >/dev/null
    dotnet build "$ROOT/tests/TestChild/TestChild.csproj" -c Release -nologo -v quiet -o "$OUT/testchild" >/dev/null
    dotnet run --project "$ROOT/bench/Postmaster.Bench/Postmaster.Bench.csproj" -c Release -- "$@" ;;
  *)
    build
    exec "$OUT/postmaster" "$@" ;;
esac
