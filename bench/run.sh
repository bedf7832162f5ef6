#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh - the driver of `make bench`: runs every measurement of
# issue 5 in one go, collects the programs' one-line results in
# $BUILD/bench/raw.txt, then bench/report.py prints the tables and writes
# bench/results.json and bench/throughput.png.
#
#   BUILD=build bench/run.sh          (what `make bench` does)
#   BENCH_SCALE=0.25                  move a quarter of the default amounts
#   BENCH_ONLY="stream latency e2e recovery tds s3"   run only some sections
#   BENCH_LOAD=1                      the whole run with a CPU-bound process
#                                     beside it (results-loaded.json)
#
# Speed never fails the run; a failed correctness check does (a checksum
# mismatch in bench-stream, a failed backup or restore, restored data that
# differs): every section still runs, and the exit status is 1 at the end.
set -u

BUILD=${BUILD:-build}
SCALE=${BENCH_SCALE:-1}
[ -n "$SCALE" ] || SCALE=1
ONLY=${BENCH_ONLY:-stream latency e2e recovery tds s3}
BIN=$BUILD/bench
RAW=$BIN/raw.txt
CACHE=${BENCH_CACHE:-build/bench-cache} # shared by every $BUILD
WORK=$BIN/work
REPS=5
failed=""

mkdir -p "$BIN" "$CACHE" "$WORK"
# vdisql, like SQL Server, reads a relative DISK path from the instance
# directory: hand it absolute ones.
WORK=$(cd "$WORK" && pwd)
: >"$RAW"

want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# A CPU-bound process beside the bench (issue 11's "loaded" rows): a busy
# loop placed wherever the scheduler likes, as a database serving queries
# would be.  hog_stop ends it; so does the exit of this script.
HOG=
hog_start() {
  sh -c 'while :; do :; done' &
  HOG=$!
}
stop_pid() { [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
hog_stop() {
  stop_pid "$HOG"
  HOG=
}
# BENCH_LOAD=1: one more for the whole run.
LOADHOG=
load_stop() {
  stop_pid "$LOADHOG"
  LOADHOG=
}
trap 'hog_stop; load_stop' EXIT
trap 'hog_stop; load_stop; exit 130' INT TERM

# The first CPU this process may run on, for `taskset -c` (the 1cpu rows).
first_cpu() {
  awk '/^Cpus_allowed_list/ { split($2, a, /[-,]/); print a[1] }' \
    /proc/self/status
}

# Bytes for one measurement: $1 (a number of MiB) times $BENCH_SCALE.
mib() {
  awk -v m="$1" -v s="$SCALE" 'BEGIN { printf "%.0f\n", m * s * 1048576 }'
}

# placement WHEN: how far apart the host has put the first two CPUs now
# (bench-latency -m cacheline): a cache line's round trip between them.
# On a virtual machine it changes from hour to hour, and a stream through
# shared memory changes with it; measured before and after the sections
# whose rows depend on it.  Not measured beside a CPU-bound process, which
# would take one of the two pinned threads' CPUs.
placement() {
  [ -n "$LOADHOG$HOG" ] && return 0
  "$BIN/bench-latency" -m cacheline -n 2000 -w 200 >"$BIN/out.txt" 2>/dev/null ||
    return 0
  sed "s/\$/ when=$1/" "$BIN/out.txt" | tee -a "$RAW" | sed 's/^/  /'
}

# Run a measuring program; its result lines go to raw.txt (and the screen).
# Exit status 77 means "libvdi is the link stub": noted, not a failure.
measure() {
  "$@" >"$BIN/out.txt"
  rc=$?
  cat "$BIN/out.txt" >>"$RAW"
  sed 's/^/  /' "$BIN/out.txt"
  if [ $rc -eq 77 ]; then
    echo "skip stub $*" >>"$RAW"
  elif [ $rc -ne 0 ]; then
    echo "bench: FAILED ($rc): $*" >&2
    failed="$failed
  $*"
  fi
  return $rc
}

# ------------------------------------------------------------- machine
{
  printf 'machine cpu=%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' \
    /proc/cpuinfo | head -n 1 | tr ' ' '_')"
  printf 'machine cores=%s\n' "$(nproc)"
  printf 'machine llc=%s\n' "$(cat /sys/devices/system/cpu/cpu0/cache/index3/size \
    2>/dev/null || echo unknown)"
  printf 'machine kernel=%s\n' "$(uname -r)"
  printf 'machine memory_gib=%s\n' "$(awk '/^MemTotal/ {
    printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
  printf 'machine cc=%s\n' "$(${CC:-cc} --version 2>/dev/null | head -n 1 |
    tr ' ' '_')"
  printf 'machine date=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'machine scale=%s\n' "$SCALE"
  printf 'machine load=%s\n' "${BENCH_LOAD:-0}"
} >>"$RAW"
echo "== machine"
sed -n 's/^machine /  /p' "$RAW"
RESULTS=bench/results.json
if [ "${BENCH_LOAD:-0}" = 1 ]; then
  hog_start
  LOADHOG=$HOG
  HOG=
  RESULTS=bench/results-loaded.json
  echo "  (a CPU-bound process runs beside the whole run: $RESULTS)"
fi

# -------------------------------------------------------------- stream
# 64 KiB transfers cost a command each, so fewer bytes keep the run short.
if want stream; then
  echo "== stream throughput ($REPS repetitions each)"
  placement stream_start
  for size in 64K 1M 4M; do
    case $size in 64K) amount=$(mib 2048) ;; *) amount=$(mib 8192) ;; esac
    for mode in inproc threads pipe unix; do
      measure "$BIN/bench-stream" -m $mode -s $size -d 1 -b "$amount" \
        -r $REPS
    done
    # vdi: a producer thread per device; vdi-agent: completion-driven.
    for mode in vdi vdi-agent; do
      for dev in 1 2 4; do
        measure "$BIN/bench-stream" -m $mode -s $size -d $dev -b "$amount" \
          -r $REPS
      done
    done
  done
  # The peers with 4 streams too, so that 4 devices meet 4 pipes/sockets.
  for mode in pipe unix; do
    measure "$BIN/bench-stream" -m $mode -s 1M -d 4 -b "$(mib 8192)" \
      -r $REPS
  done
  # Issue 11: 1 MiB again with a CPU-bound process beside every path
  # (loaded), with every process on one CPU (1cpu: what the spin policy
  # does when the peer needs the very core a waiter spins on), openvdi
  # with 16 MiB in flight instead of half the last-level cache (depth16),
  # and the producer's fill alone on either ring (its ceiling).
  echo "== stream throughput, 1 MiB: loaded, on one CPU, 16 buffers," \
    "the fill alone"
  measure "$BIN/bench-stream" -m fill -s 1M -d 1 -b "$(mib 8192)" -r $REPS
  amount=$(mib 8192)
  hog_start
  for mode in inproc pipe unix vdi; do
    measure env BENCH_COND=loaded "$BIN/bench-stream" -m $mode -s 1M -d 1 \
      -b "$amount" -r $REPS
  done
  hog_stop
  if command -v taskset >/dev/null 2>&1; then
    cpu=$(first_cpu)
    for mode in inproc pipe unix vdi; do
      measure env BENCH_COND=1cpu taskset -c "$cpu" "$BIN/bench-stream" \
        -m $mode -s 1M -d 1 -b "$amount" -r $REPS
    done
  else
    echo "  no taskset (Debian util-linux): no 1cpu rows"
  fi
  for mode in vdi fill; do
    measure env BENCH_COND=depth16 "$BIN/bench-stream" -m $mode -s 1M -d 1 \
      -b "$amount" -r $REPS -n 16
  done
  placement stream_end
fi

# ------------------------------------------------------------- latency
if want latency; then
  echo "== round-trip latency"
  rounds=$(awk -v s="$SCALE" 'BEGIN { n = 100000 * s; if (n < 1000) n = 1000;
    printf "%d\n", n }')
  measure "$BIN/bench-latency" -m eventfd -n "$rounds"
  measure "$BIN/bench-latency" -m pipe -n "$rounds"
  measure "$BIN/bench-latency" -m vdi -n "$rounds"
  measure "$BIN/bench-latency" -m vdi -n "$rounds" -S 1000
fi

# ---------------------------------------------------------- end to end
# Needs $BUILD/vdi and $BUILD/vdisql (tools/vdi, tools/vdisql).  Every
# timed command runs twice; the second (warm page cache) run is the one
# reported, since dropping caches needs root and is not reliable here.
make_db() { # DIR NAME MIB
  [ -f "$1/$2.db" ] && return 0
  echo "  generating $1/$2.db ($3 MiB, cached for later runs)"
  mkdir -p "$1"
  rows=$(($3 * 1024))
  sqlite3 "$1/$2.db.tmp" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
    PRAGMA page_size=4096;
    CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, payload BLOB);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
                            WHERE x < $rows)
    INSERT INTO item SELECT x, 'item ' || x, randomblob(980) FROM c;
    CREATE INDEX item_name ON item(name);" >/dev/null &&
    mv "$1/$2.db.tmp" "$1/$2.db"
}

e2e_ok() {
  [ -x "$BUILD/vdi" ] && [ -x "$BUILD/vdisql" ] || {
    echo "  skipped: $BUILD/vdi or $BUILD/vdisql is not built"
    return 1
  }
  command -v sqlite3 >/dev/null || {
    echo "  skipped: the sqlite3 shell is not installed"
    return 1
  }
  # A smoke round trip on a tiny database: if the tools do not work yet,
  # the rest of the benchmarks still run.
  t=$WORK/smoke
  rm -rf "$t" && mkdir -p "$t/inst" "$t/out" "$t/rest"
  sqlite3 "$t/inst/smoke.db" "CREATE TABLE t(x); INSERT INTO t VALUES(42);"
  if "$BUILD/vdi" backup smoke --instance "$t/inst" --to "$t/out" \
       --stripes 2 >"$t/log" 2>&1 &&
     "$BUILD/vdi" restore smoke --instance "$t/rest" --from "$t/out" \
       >>"$t/log" 2>&1 &&
     [ "$(sqlite3 "$t/rest/smoke.db" 'SELECT x FROM t')" = 42 ]; then
    rm -rf "$t"
    return 0
  fi
  echo "  skipped: a smoke backup/restore with $BUILD/vdi failed:"
  sed 's/^/    /' "$t/log" | tail -n 5
  return 1
}

# timed LABEL TARGET CMD...: run twice, keep the second run's line.  TARGET
# (a file, or a directory ending in /) is removed before each run, so that
# no run overwrites the output of the one before.
fresh() {
  case $1 in
  */) rm -rf "$1" && mkdir -p "$1" ;;
  *) rm -f "$1" ;;
  esac
}
timed() {
  label=$1 target=$2
  shift 2
  fresh "$target"
  "$BIN/bench-run" -l "$label.cold" -- "$@" >/dev/null 2>"$BIN/err.txt" ||
    true
  fresh "$target"
  sync
  measure "$BIN/bench-run" -l "$label" -- "$@" 2>"$BIN/err.txt" || {
    sed 's/^/    /' "$BIN/err.txt" | tail -n 5
    return 1
  }
}

same_rows() { # DB1 DB2: the restored database holds the same rows
  q="SELECT hex(sha3_query('SELECT * FROM item ORDER BY id'))"
  a=$(sqlite3 "$1" "$q")
  b=$(sqlite3 "$2" "$q")
  [ -n "$a" ] && [ "$a" = "$b" ] &&
    [ "$(sqlite3 "$2" 'PRAGMA integrity_check')" = ok ]
}

if want e2e; then
  echo "== end to end (second of two runs, warm page cache)"
  placement e2e_start
  if e2e_ok; then
    for sz in 100 1024; do
      inst=$CACHE/db$sz
      make_db "$inst" bench "$sz" || {
        failed="$failed
  generating the $sz MiB database"
        continue
      }
      echo "dbsize mib=$sz bytes=$(stat -c %s "$inst/bench.db")" >>"$RAW"
      rm -rf "$WORK" && mkdir -p "$WORK"
      timed "backup_vdi_$sz" "$WORK/vdi/" "$BUILD/vdi" backup bench \
        --instance "$inst" --to "$WORK/vdi" --stripes 4
      timed "backup_disk_$sz" "$WORK/disk.bak" "$BUILD/vdisql" -S "$inst" \
        -b -Q "BACKUP DATABASE bench TO DISK='$WORK/disk.bak' WITH FORMAT, INIT"
      timed "restore_vdi_$sz" "$WORK/rest-vdi/" "$BUILD/vdi" restore bench \
        --instance "$WORK/rest-vdi" --from "$WORK/vdi" --replace &&
        { same_rows "$inst/bench.db" "$WORK/rest-vdi/bench.db" || {
          echo "bench: the database restored by vdi differs" >&2
          failed="$failed
  restore_vdi_$sz: restored rows differ"
        }; }
      timed "restore_disk_$sz" "$WORK/rest-disk/" "$BUILD/vdisql" \
        -S "$WORK/rest-disk" -b -Q \
        "RESTORE DATABASE bench FROM DISK='$WORK/disk.bak' WITH REPLACE" &&
        { same_rows "$inst/bench.db" "$WORK/rest-disk/bench.db" || {
          echo "bench: the database restored from disk differs" >&2
          failed="$failed
  restore_disk_$sz: restored rows differ"
        }; }
      if [ "$sz" = 1024 ]; then
        timed "backup_sqlite_$sz" "$WORK/sqlite.db" sqlite3 "$inst/bench.db" \
          ".backup '$WORK/sqlite.db'"
        timed "backup_cp_$sz" "$WORK/cp.db" cp "$inst/bench.db" "$WORK/cp.db"
      fi
      rm -rf "$WORK"
    done
    # Issue 11: one-stripe backups of the 1 GiB database, alternating runs
    # (medians): 64 KiB transfers with 10 buffers (what Bareos sets)
    # against the default 1 MiB; the 1 MiB one (checksums, fsync of the
    # stripe) against cp + fsync of the copy; compressed (LOW, MEDIUM)
    # against zstd -T0 -3 of the database file.
    inst=$CACHE/db1024
    db=$inst/bench.db
    if [ -f "$db" ]; then
      echo "== backup of 1 GiB: transfer sizes, cp + fsync, compression" \
        "(alternating runs, medians)"
      mkdir -p "$WORK"
      for r in $(seq 1 $REPS); do
        timed "i11_backup_1m_r$r" "$WORK/v1m/" "$BUILD/vdi" backup bench \
          --instance "$inst" --to "$WORK/v1m" --quiet
        timed "i11_backup_64k_r$r" "$WORK/v64k/" "$BUILD/vdi" backup bench \
          --instance "$inst" --to "$WORK/v64k" --quiet --buffer-count 10 \
          --max-transfer-size 65536
        timed "i11_cp_fsync_r$r" "$WORK/cp.db" sh -c \
          "cp '$db' '$WORK/cp.db' && sync '$WORK/cp.db'"
        timed "i11_compress_r$r" "$WORK/vz/" "$BUILD/vdi" backup bench \
          --instance "$inst" --to "$WORK/vz" --quiet --stripes 4 --compress
        timed "i11_compress_medium_r$r" "$WORK/vzm/" "$BUILD/vdi" backup \
          bench --instance "$inst" --to "$WORK/vzm" --quiet --stripes 4 \
          --compress-level medium
        if command -v zstd >/dev/null 2>&1; then
          timed "i11_zstd_r$r" "$WORK/z.zst" sh -c \
            "zstd -q -T0 -3 -c '$db' >'$WORK/z.zst'"
          # The same made durable, as a backup's stripes are.
          timed "i11_zstd_fsync_r$r" "$WORK/z.zst" sh -c \
            "zstd -q -T0 -3 -c '$db' >'$WORK/z.zst' && sync '$WORK/z.zst'"
        fi
      done
      # RESTORE of a one-stripe backup through vdi against RESTORE FROM
      # DISK of a one-file DISK backup, alternating: both are bound by
      # the disk writing 1 GiB, whose speed here varies from run to run.
      # Both backups are made here, one after the other, so that both are
      # as much in the page cache (the backups above wrote about 20 GB
      # since the last one-stripe set, which the cache may not hold); the
      # raw output says how much of each is cached (fincore).
      rm -rf "$WORK/vr"
      "$BUILD/vdi" backup bench --instance "$inst" --to "$WORK/vr" \
        --quiet || {
        failed="$failed
  the vdi backup for the restore rows"
      }
      "$BUILD/vdisql" -S "$inst" -b -Q "BACKUP DATABASE bench TO \
        DISK='$WORK/disk.bak' WITH FORMAT, INIT" >/dev/null || {
        failed="$failed
  the DISK backup for the restore rows"
      }
      if command -v fincore >/dev/null 2>&1; then
        echo "cached restore_sources" \
          "vdi=$(fincore -nb -o RES $(find "$WORK/vr" -name '*.vdibak') | \
            awk '{s += $1} END {print s + 0}')" \
          "disk=$(fincore -nb -o RES "$WORK/disk.bak")" \
          "size=$(stat -c %s "$WORK/disk.bak")" | tee -a "$RAW"
      fi
      for r in $(seq 1 $REPS); do
        timed "i11_restore_vdi_r$r" "$WORK/rv/" "$BUILD/vdi" restore bench \
          --instance "$WORK/rv" --from "$WORK/vr" --replace --quiet
        timed "i11_restore_disk_r$r" "$WORK/rd/" "$BUILD/vdisql" \
          -S "$WORK/rd" -b -Q \
          "RESTORE DATABASE bench FROM DISK='$WORK/disk.bak' WITH REPLACE"
      done
      for v in rv rd; do
        same_rows "$db" "$WORK/$v/bench.db" || {
          echo "bench: the database restored in $v differs" >&2
          failed="$failed
  $v: restored rows differ"
        }
      done
      echo "size compressed_low=$(du -sb "$WORK/vz" | cut -f1)" \
        "compressed_medium=$(du -sb "$WORK/vzm" | cut -f1)" \
        "zstd3=$(stat -c %s "$WORK/z.zst" 2>/dev/null)" | tee -a "$RAW"
      for v in v64k vz; do
        rm -rf "$WORK/r" && mkdir -p "$WORK/r"
        if "$BUILD/vdi" restore bench --instance "$WORK/r" --from "$WORK/$v" \
          --quiet && same_rows "$db" "$WORK/r/bench.db"; then :; else
          echo "bench: the $v backup does not restore the same rows" >&2
          failed="$failed
  $v: restored rows differ"
        fi
      done
      rm -rf "$WORK"
    fi
  fi
  placement e2e_end
fi

# ------------------------------------------------------- recovery model
# Issue 9: the cost of the instance's log capture on a write-heavy
# workload, BACKUP LOG against a full backup of as many bytes, and a
# differential of a 1 GiB database with 1% of its pages changed against a
# full backup of it.
serve_start() { # DIR [ARGS...]: run an instance, wait until it listens
  d=$1
  shift
  # DISK backups beside the instance directory are the bench's own.  The
  # old log goes first: the wait below must not read a previous run's.
  rm -f "$d.log"
  "$BUILD/vdisql" --serve -S "$d" --backup-dir "$(dirname "$d")" "$@" \
    2>"$d.log" &
  SERVE_PID=$!
  i=0
  while ! grep -q ' ready (pid ' "$d.log" 2>/dev/null && [ $i -lt 500 ]; do
    sleep 0.01
    i=$((i + 1))
  done
}
serve_stop() {
  kill -TERM "$SERVE_PID" 2>/dev/null
  wait "$SERVE_PID" 2>/dev/null
}
q() { # DIR STATEMENT
  "$BUILD/vdisql" -S "$1" -b -Q "$2" >/dev/null || {
    echo "bench: failed: $2" >&2
    failed="$failed
  $2"
    return 1
  }
}
bytes_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

if want recovery; then
  echo "== recovery model (second of two runs)"
  if e2e_ok; then
    R=$WORK/rec
    rm -rf "$R" && mkdir -p "$R"
      # Many small transactions: one row each, WAL, synchronous=NORMAL, and
    # a busy timeout, as every application of a WAL database needs.
    ncommit=$(awk -v s="$SCALE" 'BEGIN { n = 20000 * s; if (n < 2000) n = 2000;
      printf "%d\n", n }')
    awk -v n="$ncommit" 'BEGIN { print ".timeout 5000"; print "PRAGMA synchronous=NORMAL;";
      for (i = 1; i <= n; i++)
        printf "INSERT INTO t(v) VALUES (%d);\n", i }' >"$R/commits.sql"
    for m in simple full; do
      mkdir -p "$R/$m"
      sqlite3 "$R/$m/w.db" "PRAGMA journal_mode=WAL;
        CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER);" >/dev/null
    done
    serve_start "$R/full"
    q "$R/full" "ALTER DATABASE w SET RECOVERY FULL" &&
      q "$R/full" "BACKUP DATABASE w TO DISK='$R/w-full.bak'"
    # Alternating, $REPS times each: the report takes the medians.
    for r in $(seq 1 $REPS); do
      timed "log_commits_simple_r$r" "$R/none" sqlite3 "$R/simple/w.db" \
        ".read $R/commits.sql"
      timed "log_commits_full_r$r" "$R/none" sqlite3 "$R/full/w.db" \
        ".read $R/commits.sql"
    done
    q "$R/full" "BACKUP LOG w TO DISK='$R/w-log.bak'" &&
      q "$R/full" "RESTORE DATABASE w2 FROM DISK='$R/w-full.bak' WITH NORECOVERY" &&
      q "$R/full" "RESTORE LOG w2 FROM DISK='$R/w-log.bak'" &&
      { [ "$(sqlite3 "$R/full/w2.db" 'SELECT count(*) FROM t')" = \
          "$(sqlite3 "$R/full/w.db" 'SELECT count(*) FROM t')" ] || {
        echo "bench: the log restore lost commits" >&2
        failed="$failed
  log_commits_full: restored rows differ"
      }; }

    # About 100 MiB of log; then BACKUP LOG (COPY_ONLY, so that both runs
    # back up the same log) against a full backup (COPY_ONLY) of the
    # database, which holds about as many bytes.
    rows=$(awk -v s="$SCALE" 'BEGIN { printf "%d\n", 100 * 1024 * s }')
    sqlite3 "$R/full/big.db" "PRAGMA journal_mode=WAL;
      CREATE TABLE item(id INTEGER PRIMARY KEY, payload BLOB);" >/dev/null
    q "$R/full" "ALTER DATABASE big SET RECOVERY FULL" &&
      q "$R/full" "BACKUP DATABASE big TO DISK='$R/big-base.bak'"
    sqlite3 "$R/full/big.db" "PRAGMA synchronous=NORMAL;
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
                              WHERE x < $rows)
      INSERT INTO item SELECT x, randomblob(980) FROM c;" >/dev/null
    timed "rec_backup_log" "$R/big-log.bak" "$BUILD/vdisql" -S "$R/full" -b \
      -Q "BACKUP LOG big TO DISK='$R/big-log.bak' WITH COPY_ONLY"
    timed "rec_backup_full" "$R/big-full.bak" "$BUILD/vdisql" -S "$R/full" \
      -b -Q "BACKUP DATABASE big TO DISK='$R/big-full.bak' WITH COPY_ONLY"
    echo "recsize label=rec_backup_log bytes=$(bytes_of "$R/big-log.bak")" \
      >>"$RAW"
    echo "recsize label=rec_backup_full bytes=$(bytes_of "$R/big-full.bak")" \
      >>"$RAW"
    serve_stop

    # A 1 GiB database, 1% of its pages changed after the full backup.
    inst=$CACHE/db1024
    if make_db "$inst" bench 1024; then
      mkdir -p "$R/diff"
      cp "$inst/bench.db" "$R/diff/bench.db"
      sqlite3 "$R/diff/bench.db" "PRAGMA journal_mode=WAL" >/dev/null
      serve_start "$R/diff"
      q "$R/diff" "BACKUP DATABASE bench TO DISK='$R/diff-base.bak'"
      rm -f "$R/diff-base.bak"
      sqlite3 "$R/diff/bench.db" "UPDATE item SET payload = randomblob(980)
        WHERE id % 400 = 0" >/dev/null
      timed "rec_diff1pct" "$R/diff.bak" "$BUILD/vdisql" -S "$R/diff" -b \
        -Q "BACKUP DATABASE bench TO DISK='$R/diff.bak' WITH DIFFERENTIAL"
      timed "rec_full1g" "$R/full1g.bak" "$BUILD/vdisql" -S "$R/diff" -b \
        -Q "BACKUP DATABASE bench TO DISK='$R/full1g.bak' WITH COPY_ONLY"
      echo "recsize label=rec_diff1pct bytes=$(bytes_of "$R/diff.bak")" \
        >>"$RAW"
      echo "recsize label=rec_full1g bytes=$(bytes_of "$R/full1g.bak")" \
        >>"$RAW"
      serve_stop
    fi
    rm -rf "$R"
  fi
fi

# ------------------------------------------------------------------ TDS
# Issue 10: a 1 GiB BACKUP issued over TDS (FreeTDS tsql) against the same
# statement through `vdisql -Q`, both to the same running instance; and a
# connection, login and SELECT 1 over TDS against the same through
# vdisql's local socket.  Alternating runs; the report takes medians.
if want tds; then
  echo "== TDS endpoint (alternating runs, medians)"
  inst=$CACHE/db1024
  if ! command -v tsql >/dev/null 2>&1; then
    echo "  skipped: no tsql (Debian freetds-bin)"
  elif e2e_ok && make_db "$inst" bench 1024; then
    T=$WORK/tds
    rm -rf "$T" && mkdir -p "$T"
    MSSQL_SA_PASSWORD='Bench-Tds#1' serve_start "$inst" --backup-dir "$T" \
      --tds 127.0.0.1:0
    port=$(sed -n 's/^vdisql: TDS on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$inst.log" | head -n 1)
    stmt="BACKUP DATABASE bench TO DISK='$T/b.bak' WITH FORMAT, INIT"
    printf '%s\ngo\nquit\n' "$stmt" >"$T/backup.sql"
    printf 'SELECT 1\ngo\nquit\n' >"$T/select.sql"
    for r in $(seq 1 $REPS); do
      timed "tds_backup_tds_r$r" "$T/b.bak" sh -c "$(command -v tsql) -H 127.0.0.1 -p $port -U sa -P 'Bench-Tds#1' <'$T/backup.sql' >'$T/tsql.out' 2>&1 && grep -q 'successfully processed' '$T/tsql.out'"
      timed "tds_backup_cli_r$r" "$T/b.bak" "$BUILD/vdisql" -S "$inst" -b \
        -Q "$stmt"
    done
    "$BUILD/vdisql" -S "$inst" -b -Q "RESTORE VERIFYONLY FROM DISK='$T/b.bak'" \
      >/dev/null || failed="$failed
  tds: the backup over TDS does not verify"
    for r in $(seq 1 20); do
      measure "$BIN/bench-run" -l "tds_login_tds_r$r" -- sh -c \
        "$(command -v tsql) -H 127.0.0.1 -p $port -U sa -P 'Bench-Tds#1' <'$T/select.sql' >'$T/tsql.out' 2>&1 && grep -q '^1\$' '$T/tsql.out'" \
        >/dev/null
      measure "$BIN/bench-run" -l "tds_login_cli_r$r" -- "$BUILD/vdisql" \
        -S "$inst" -b -Q "SELECT 1" >/dev/null
    done
    serve_stop
    rm -rf "$T"
  fi
fi

# ------------------------------------------------------------------- S3
# Issue 14: a 1 GiB backup with `vdi backup --to s3://` to a local Ceph RGW
# (tools/s3-test-server.sh) against `aws s3 cp` (Debian's awscli, v2) of the
# database file to the same gateway, and the same backup encrypted
# (--encrypt) against plain.  Alternating runs; the report takes medians.
# The gateway frees deleted objects only hours later, so its in-memory
# store is made large enough for every run.
if want s3; then
  echo "== S3 (a local Ceph RADOS Gateway; alternating runs, medians)"
  inst=$CACHE/db1024
  if [ ! -x /usr/bin/aws ]; then
    echo "  skipped: no /usr/bin/aws (Debian awscli)"
  elif ! s3env=$(VDI_S3_TEST_DIR=$WORK/s3 VDI_S3_TEST_MEMSTORE_BYTES=12884901888 \
    tools/s3-test-server.sh start 2>"$BIN/s3.err"); then
    echo "  skipped: the S3 store did not start:"
    tail -n 3 "$BIN/s3.err" | sed 's/^/    /'
  elif e2e_ok && make_db "$inst" bench 1024; then
    eval "$s3env"
    B=$VDI_S3_TEST_BUCKET
    # aws addresses a bucket path-style at a local endpoint only if told.
    printf '[default]\ns3 =\n    addressing_style = path\n' >"$BIN/aws.cfg"
    rm -f "$BIN/s3.key"
    "$BUILD/vdi" keygen "$BIN/s3.key" >/dev/null 2>&1
    # Five rounds of 3 GiB of objects in a 12 GiB in-memory store: each
    # round's objects are deleted and their memory reclaimed at once (the
    # gateway would free it only hours later, and a fuller store stalls
    # its writers).
    for r in $(seq 1 $REPS); do
      measure "$BIN/bench-run" -l "s3_awscli_r$r" -- env \
        AWS_CONFIG_FILE="$BIN/aws.cfg" /usr/bin/aws s3 cp "$inst/bench.db" \
        "s3://$B/awscli/r$r/bench.db" --endpoint-url "$AWS_ENDPOINT_URL" \
        --only-show-errors >/dev/null
      measure "$BIN/bench-run" -l "s3_vdi_r$r" -- "$BUILD/vdi" backup bench \
        --instance "$inst" --to "s3://$B/plain$r" --quiet >/dev/null
      measure "$BIN/bench-run" -l "s3_vdi_enc_r$r" -- "$BUILD/vdi" backup \
        bench --instance "$inst" --to "s3://$B/enc$r" --encrypt \
        --key-file "$BIN/s3.key" --quiet >/dev/null
      # The first encrypted backup must verify with its key.
      [ "$r" = 1 ] && { "$BUILD/vdi" verify bench --from "s3://$B/enc$r" \
        --key-file "$BIN/s3.key" --instance "$inst" --quiet >/dev/null 2>&1 ||
        {
          echo "bench: the encrypted S3 backup does not verify" >&2
          failed="$failed
  s3: the encrypted backup does not verify"
        }; }
      AWS_CONFIG_FILE="$BIN/aws.cfg" /usr/bin/aws s3 rm "s3://$B/" \
        --recursive --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors \
        >/dev/null 2>&1
      VDI_S3_TEST_DIR=$WORK/s3 tools/s3-test-server.sh reclaim
    done
    VDI_S3_TEST_DIR=$WORK/s3 tools/s3-test-server.sh stop >/dev/null 2>&1
  fi
fi

# -------------------------------------------------------------- report
echo
load_stop
python3 bench/report.py "$RAW" "$RESULTS" bench/throughput.png ||
  failed="$failed
  bench/report.py"

if [ -n "$failed" ]; then
  echo "bench: these failed:$failed" >&2
  exit 1
fi
exit 0
