#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check.sh - what `make check` runs, in order:
#   1. every test of the normal build (run-tests),
#   2. the core tests (lib_, loop_) built with ASan+UBSan,
#   3. the core tests built with TSan, the threads-in-one-process ones
#      (loop_) included,
#   4. the fuzz corpora replayed (fuzz-replay),
#   5. clang-format over every C, C++ and header file.
# Each phase prints its own summary; the last line adds them up as
# "N passed, N failed", followed by ", N skipped" when a test or a whole
# phase could not run here (CI reads it).  A phase this machine cannot run
# (no clang-format, not a git checkout, no fuzz/) counts as one skip, and
# says why; one that should run and cannot (fuzz/ without its replay
# target) counts as one failure.  Exit status 1 if anything failed.
set -u
# Sub-builds run as fresh makes (each takes every core itself); the parent
# make's jobserver is not passed down to them through this script.
unset MAKEFLAGS MFLAGS MAKELEVEL
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
JOBS=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
total_skip=0

phase() { # label, then the command
  local label=$1
  shift
  echo "== $label"
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "check: phase '$label' printed no summary; counted as 1 failure"
    total_fail=$((total_fail + 1))
  else
    local p f s
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + ${s:-0}))
  fi
  rm -f "$log"
}

skip_phase() { # label, why
  echo "== $1"
  echo "check: phase '$1' skipped: $2"
  total_skip=$((total_skip + 1))
}

fail_phase() { # label, why
  echo "== $1"
  echo "check: phase '$1' failed: $2"
  total_fail=$((total_fail + 1))
}

build_or_fail() { # label, then make arguments
  local label=$1
  shift
  if ! $MAKE -s -j"$JOBS" "$@" >/dev/null; then
    echo "check: build for $label failed"
    total_fail=$((total_fail + 1))
    return 1
  fi
}

# The S3 tests' store (test-s3.c): one real Ceph RADOS Gateway on loopback
# for the run, started here and stopped after the phase that uses it.  When
# the machine lacks Ceph the script says so (exit 3) and those tests skip.
s3_server=tools/s3-test-server.sh
if [ -x "$s3_server" ]; then
  # Absolute: the tests run in directories of their own.
  case $BUILD in /*) s3_dir=$BUILD/s3-test ;; *) s3_dir=$PWD/$BUILD/s3-test ;; esac
  export VDI_S3_TEST_DIR=${VDI_S3_TEST_DIR:-$s3_dir}
  trap '"$s3_server" stop >/dev/null 2>&1' EXIT
  if s3_env=$("$s3_server" start); then eval "$s3_env"; fi
fi

phase "all tests" "$BUILD/run-tests"

# (Stopped even when the start above failed: the tests may have started
# it themselves.)
if [ -x "$s3_server" ]; then
  "$s3_server" stop >/dev/null 2>&1
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_ENDPOINT_URL \
    VDI_S3_TEST_BUCKET
fi

if build_or_fail asan BUILD="$BUILD/asan" SAN=address,undefined OPT=-O1 \
    "$BUILD/asan/run-tests"; then
  ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  VDI_TEST_TIMEOUT_MULTIPLIER=4 \
    phase "ASan+UBSan: core tests" "$BUILD/asan/run-tests" lib_ loop_
fi

if build_or_fail tsan BUILD="$BUILD/tsan" SAN=thread OPT=-O1 \
    "$BUILD/tsan/run-tests"; then
  # Every process of the core tests is checked on its own; the loop_ tests
  # put both halves in one process.  Thread-leak reports are off: test
  # helpers exit without joining their agent threads (the library's own
  # threads are counted by the fault tests).  lib_fault_* count mappings,
  # which TSan adds to, so they run in the other phases only.
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:report_thread_leaks=0} \
  VDI_TEST_TIMEOUT_MULTIPLIER=6 \
    phase "TSan: protocol tests" "$BUILD/tsan/run-tests" loop_ lib_ -x lib_fault
fi

if [ ! -f fuzz/fuzz.mk ]; then
  skip_phase "fuzz corpora" "no fuzz/fuzz.mk"
elif ! $MAKE -s -n fuzz-replay >/dev/null 2>&1; then
  fail_phase "fuzz corpora" "fuzz/fuzz.mk has no working fuzz-replay target"
else
  phase "fuzz corpora" $MAKE -s fuzz-replay
fi

# Formatting is mechanical: every C, C++ and header file as clang-format
# (with the committed .clang-format) would write it.
if ! command -v clang-format >/dev/null 2>&1; then
  skip_phase "clang-format" "clang-format is not installed (apt-get install clang-format)"
elif [ ! -e .git ]; then
  skip_phase "clang-format" "not a git checkout (the files are listed by git ls-files)"
else
  fmt_check() {
    local bad=0 f
    for f in $(git ls-files '*.c' '*.h' '*.cpp'); do
      if ! clang-format "$f" | cmp -s - "$f"; then
        echo "not formatted: $f (make format)"
        bad=$((bad + 1))
      fi
    done
    if [ "$bad" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
  }
  phase "clang-format" fmt_check
fi

echo
if [ "$total_skip" -gt 0 ]; then
  echo "$total_pass passed, $total_fail failed, $total_skip skipped"
else
  echo "$total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ]
