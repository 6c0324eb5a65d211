#!/usr/bin/env bash
# Build (when sources changed) and run postmaster.
#   ./run.sh <postmaster arguments>   e.g. ./run.sh start -D ./data
#   ./run.sh test [--long]             the whole test suite (--long adds soak tests)
#   ./run.sh bench                     benchmarks; figures go to docs/benchmarks.md by hand
#   ./run.sh kv [-D DIR] [start options]  the key-value sample (Redis protocol) on port 6380, in the foreground
#   ./run.sh build                     build only
#   ./run.sh pack                      the NuGet packages (SDK, test harness, dotnet new template) into out/packages
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
    echo "run.sh: building (Release: postmaster NativeAOT, pm-backend ReadyToRun) into out/" >&2
    local log; log="$(mktemp)"
    # postmaster: NativeAOT (needs clang; Debian 12 may have only clang-14 on the PATH). pm-backend: ReadyToRun.
    local cc=()
    if ! command -v clang >/dev/null 2>&1 && command -v clang-14 >/dev/null 2>&1; then cc=(-p:CppCompilerAndLinker=clang-14); fi
    if ! { dotnet publish "$ROOT/src/Postmaster/Postmaster.csproj" -c Release -r linux-x64 "${cc[@]}" \
             -o "$OUT" -nologo -v quiet >"$log" 2>&1 &&
           dotnet publish "$ROOT/src/Backend/Backend.csproj" -c Release -r linux-x64 --self-contained false \
             -p:PublishReadyToRun=true -o "$OUT" -nologo -v quiet >>"$log" 2>&1; }; then
      cat "$log" >&2; rm -f "$log"; echo "run.sh: build failed" >&2; exit 1
    fi
    rm -f "$log"
    touch "$OUT/.stamp"
  fi
}

# The packages a worker author uses (SDK with XML docs and symbols, test harness, dotnet new template), into out/packages.
pack() {
  local log; log="$(mktemp)"
  rm -rf "$OUT/packages"
  for project in src/Workers/Workers.csproj src/Testing/Testing.csproj templates/Postmaster.Templates.csproj; do
    if ! dotnet pack "$ROOT/$project" -c Release -o "$OUT/packages" -nologo -v quiet >>"$log" 2>&1; then
      cat "$log" >&2; rm -f "$log"; echo "run.sh: pack of $project failed" >&2; exit 1
    fi
  done
  rm -f "$log"
}

case "${1:-}" in
  build)
    build ;;
  test)
    shift
    build
    pack
    # Long tests (the crash soak) run with --long, and in CI (CI=true), where they fit the time budget.
    filter="Category!=Long"
    if [ "${1:-}" = "--long" ]; then filter=""; shift; fi
    if [ "${CI:-}" = "true" ]; then filter=""; fi
    export POSTMASTER_OUT="$OUT"
    dotnet build "$ROOT/tests/TestChild/TestChild.csproj" -c Release -nologo -v quiet -o "$ROOT/out/testchild" >/dev/null
    # The plain closing line CI reads, taken from the runner's own summaries ("Passed: N" lines at normal
    # verbosity, or "Failed!  - Failed: N, Passed: N, Skipped: N" at minimal), summed over the test projects.
    count() { grep -E "^\s*$1: +[0-9]+" "$2" | tail -1 | grep -oE '[0-9]+' | tail -1; }
    total_passed=0; total_failed=0; total_skipped=0; rc=0
    run_tests() { # project, log, extra arguments
      local project="$1" log="$2"; shift 2
      set +e
      dotnet test "$project" -c Release -nologo ${filter:+--filter "$filter"} --logger "console;verbosity=normal" "$@" 2>&1 \
        | tee "$log" | grep -v -E '^\s*$'
      local r=${PIPESTATUS[0]}
      set -e
      local passed failed skipped summary
      passed="$(count Passed "$log" || true)"; failed="$(count Failed "$log" || true)"; skipped="$(count Skipped "$log" || true)"
      if [ -z "$passed$failed" ]; then
        summary="$(grep -E '(Passed|Failed)! +- ' "$log" | tail -1 || true)"
        passed="$(sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' <<<"$summary")"
        failed="$(sed -n 's/.*Failed: *\([0-9]*\).*/\1/p' <<<"$summary")"
        skipped="$(sed -n 's/.*Skipped: *\([0-9]*\).*/\1/p' <<<"$summary")"
      fi
      # A project that executed nothing is a failure, not a success.
      if [ "$r" = 0 ] && [ "${passed:-0}" = 0 ]; then echo "run.sh: no test of $project was executed" >&2; r=1; fi
      total_passed=$((total_passed + ${passed:-0})); total_failed=$((total_failed + ${failed:-0}))
      total_skipped=$((total_skipped + ${skipped:-0}))
      if [ "$r" != 0 ]; then rc="$r"; fi
    }
    run_tests "$ROOT/tests/Postmaster.Tests/Postmaster.Tests.csproj" "$OUT/test.log" "$@"
    run_tests "$ROOT/samples/SharedCounter.Tests/SharedCounter.Tests.csproj" "$OUT/test-samples.log" "$@"
    run_tests "$ROOT/samples/KeyValue.Tests/KeyValue.Tests.csproj" "$OUT/test-keyvalue.log" "$@"
    echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
    exit "$rc" ;;
  pack)
    build
    pack
    ls "$OUT/packages" ;;
  bench)
    shift
    build
    export POSTMASTER_OUT="$OUT"
    dotnet publish "$ROOT/bench/Hello/Hello.csproj" -c Release -r linux-x64 --self-contained false \
      -p:PublishReadyToRun=true -o "$OUT/bench-hello" -nologo -v quiet >/dev/null
    dotnet build "$ROOT/tests/TestChild/TestChild.csproj" -c Release -nologo -v quiet -o "$OUT/testchild" >/dev/null
    dotnet build "$ROOT/samples/KeyValue/KeyValue.csproj" -c Release -nologo -v quiet -o "$OUT/samples/KeyValue" >/dev/null
    dotnet run --project "$ROOT/bench/Postmaster.Bench/Postmaster.Bench.csproj" -c Release -- "$@" ;;
  kv)
    shift
    build
    dotnet build "$ROOT/samples/KeyValue/KeyValue.csproj" -c Release -nologo -v quiet -o "$OUT/samples/KeyValue" >/dev/null
    dir="./kvdata"
    if [ "${1:-}" = "-D" ] && [ -n "${2:-}" ]; then dir="$2"; shift 2; fi
    exec "$OUT/postmaster" start -D "$dir" -c "connection_worker=$OUT/samples/KeyValue/KeyValue.dll:KeyValue.KvServer" \
      -c port=6380 -c "connection_rejection_message=-ERR max number of clients reached" "$@" ;;
  *)
    build
    exec "$OUT/postmaster" "$@" ;;
esac
