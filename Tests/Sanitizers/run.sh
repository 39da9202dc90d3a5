#!/usr/bin/env bash
# `make test-sanitize`: builds and runs the Swift test suites under one sanitizer.
#   Tests/Sanitizers/run.sh address|thread [extra `swift test` arguments]
# Scratch paths .build-asan / .build-tsan. The end-to-end suites start the `laminar` binary that
# sits beside the test bundle, so the server runs sanitized too; it inherits the options below.
# Every report of any process (the tests, a server, a crash child) is written to
# <scratch>/sanitizer-reports/ and fails the run, whatever the tests themselves saw; a server
# with a report also exits 66, which fails the test that stops it (it expects 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
kind="${1:?address or thread}"
shift
SWIFT="${SWIFT:-swift}"
case "$kind" in
  address) scratch=.build-asan ;;
  thread) scratch=.build-tsan ;;
  *) echo "usage: $0 address|thread" >&2; exit 2 ;;
esac
reports="$PWD/$scratch/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
common="exitcode=66:log_path=$reports/$kind"
# AddressSanitizer stops at the first error (it cannot go on); leaks are checked at exit, except
# the toolchain's own listed in lsan.supp (all in the test runner process).
export ASAN_OPTIONS="$common:halt_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="suppressions=$PWD/Tests/Sanitizers/lsan.supp:print_suppressions=0"
# ThreadSanitizer reports every race and goes on (exit status 66 at the end), so one run shows all.
export TSAN_OPTIONS="$common:halt_on_error=0:second_deadlock_stack=1:history_size=4"
# libFuzzer-style: keep Swift's backtracer from racing the sanitizer's own crash report.
export SWIFT_BACKTRACE=enable=no

# Every suite runs (children the crash tests kill with SIGKILL report what they find while alive;
# only their exit-time leak check cannot run). ReactorKVTests.noLostWakeUps, once left out under
# ThreadSanitizer for a park-count assertion that depended on timing, now waits for each park.
skip=()

start=$(date +%s)
"$SWIFT" build --build-tests --scratch-path "$scratch" --sanitize="$kind"
built=$(date +%s)
echo "sanitize=$kind: build took $(( built - start )) s"
status=0
"$SWIFT" test --skip-build --scratch-path "$scratch" --sanitize="$kind" ${skip[@]+"${skip[@]}"} "$@" || status=$?
echo "sanitize=$kind: tests took $(( $(date +%s) - built )) s (status $status)"
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize=$kind: REPORTS in $reports:" >&2
  for f in "$reports"/*; do echo "=== $f" >&2; head -80 "$f" >&2; done
  status=1
fi
exit $status
