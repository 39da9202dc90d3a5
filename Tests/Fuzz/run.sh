#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (Tests/Fuzz) and runs each for a bounded time.
#   Tests/Fuzz/run.sh [SECONDS_EACH] [FUZZER...]      (default 60 s, every fuzzer)
# Run from anywhere; builds into .build-fuzz at the repository root. Each fuzzer starts from its
# committed seed corpus (Tests/Fuzz/Corpus/<fuzzer>, only read) plus what earlier runs found
# (.build-fuzz/corpus/<fuzzer>, where new inputs go). A crash stops the run with a non-zero status
# and leaves the input in .build-fuzz/artifacts/; reproduce with
#   SWIFT_BACKTRACE=enable=no .build-fuzz/debug/<fuzzer> .build-fuzz/artifacts/<fuzzer>-crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
fuzzers=("$@")
if [ ${#fuzzers[@]} -eq 0 ]; then
  fuzzers=($(ls Tests/Fuzz/Corpus))
fi
SWIFT="${SWIFT:-swift}"
scratch=.build-fuzz

start=$(date +%s)
mkdir -p "$scratch"
for f in "${fuzzers[@]}"; do
  if ! "$SWIFT" build --package-path Tests/Fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer \
       --product "$f" >"$scratch/build.log" 2>&1; then
    cat "$scratch/build.log" >&2
    exit 1
  fi
done
echo "fuzz: build took $(( $(date +%s) - start )) s"

# libFuzzer writes the crash file itself: keep Swift's backtracer out of the way.
export SWIFT_BACKTRACE=enable=no
status=0
for f in "${fuzzers[@]}"; do
  work="$scratch/corpus/$f"
  mkdir -p "$work" "$scratch/artifacts"
  echo "fuzz: $f for $seconds s"
  log="$scratch/$f.log"
  if "$scratch/debug/$f" "$work" "Tests/Fuzz/Corpus/$f" \
       -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=8192 \
       -print_final_stats=1 -artifact_prefix="$scratch/artifacts/$f-" >"$log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|Done)' "$log" | tr '\n' ' '; echo
  else
    status=1
    echo "fuzz: $f FAILED; log: $log" >&2
    grep -E 'Fatal error|Precondition failed|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
  fi
done
exit $status
