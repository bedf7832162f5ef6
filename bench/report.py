#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/report.py - turn the result lines of one `make bench` run into
tables on stdout, bench/results.json and bench/throughput.png.

usage: report.py RAW.txt RESULTS.json CHART.png

RAW.txt holds the lines the measuring programs print ("stream k=v ...",
"latency k=v ...", "run label=L k=v ...") and run.sh's own ("machine k=v",
"dbsize ...", "skip stub ...").  Every ratio in results.json is > 1 when
openvdi is the better one.  Nothing here judges speed; it only reports.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys

GIB = 1 << 30


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            kv = {}
            for p in parts[1:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    kv[k] = v
            rows.append((parts[0], kv, line.strip()))
    return rows


def spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt_size(b):
    b = int(b)
    return "%d KiB" % (b >> 10) if b < (1 << 20) else "%d MiB" % (b >> 20)


def table(title, head, body):
    print(title)
    w = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "  " + "  ".join(
        str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in
        enumerate(r))
    print(line(head))
    print("  " + "  ".join("-" * x for x in w))
    for r in body:
        print(line(r))
    print()


def main():
    raw, out_json, out_png = sys.argv[1:4]
    rows = parse(raw)
    machine = {}
    stream = {}   # (mode, size, dev, cond) -> list of (GB/s, srv, cli cpu/GiB,
    #               the host's steal seconds, cache-line round trip us)
    latency = {}  # (mode, spin) -> kv
    runs = {}     # label -> kv
    placements = []  # (when, cache-line round trip between two CPUs, us)
    stubbed = False
    for kind, kv, line in rows:
        if kind == "machine":
            for k, v in kv.items():
                machine[k] = v.replace("_", " ")
        elif kind == "stream":
            gib = int(kv["bytes"]) / GIB
            secs = float(kv["secs"])
            key = (kv["mode"], int(kv["size"]), int(kv["dev"]),
                   kv.get("cond", "quiet"))
            stream.setdefault(key, []).append(
                (int(kv["bytes"]) / secs / 1e9, float(kv["srv_cpu"]) / gib,
                 float(kv["cli_cpu"]) / gib, float(kv.get("steal", 0)),
                 float(kv.get("cacheline_us", -1))))
        elif kind == "latency" and kv["mode"] == "cacheline":
            placements.append((kv.get("when", "-"), float(kv["median_us"])))
        elif kind == "latency":
            latency[(kv["mode"], int(kv["spin"]))] = kv
        elif kind == "run":
            if not kv["label"].endswith(".cold"):
                runs[kv["label"]] = kv
        elif kind == "skip" and "stub" in line:
            stubbed = True

    print("== machine")
    for k in ("cpu", "cores", "llc", "kernel", "memory_gib", "cc", "date",
              "scale"):
        if k in machine:
            print("  %-10s %s" % (k, machine[k]))
    if placements:
        # bench-latency -m cacheline: about 0.1 us when the host runs the
        # two virtual CPUs on one last-level cache, several times that
        # when it does not; a stream through shared memory follows it.
        print("  %-10s %s" % ("cpu pair", "cache-line round trip: " + ", ".join(
            "%.3f us (%s)" % (us, when) for when, us in placements)))
    print()
    if stubbed:
        print("NOTE: libvdi in this build is the link stub (the core is not "
              "in); the VDI rows are missing.\n")

    results = {}

    def put(name, ours, peer, unit, higher_better=True):
        if ours is None or peer is None or ours <= 0 or peer <= 0:
            return
        r = ours / peer if higher_better else peer / ours
        results[name] = {"ours": round(ours, 4), "peer": round(peer, 4),
                         "unit": unit, "ratio": round(r, 3)}

    # ------------------------------------------------------------ stream
    def gbps(mode, size, dev=1, cond="quiet"):
        v = stream.get((mode, size, dev, cond))
        return statistics.median(x[0] for x in v) if v else None

    if stream:
        body = []
        names = {"inproc": "in-process (no IPC)",
                 "threads": "2 threads, a plain ring",
                 "fill": "the producer's fill alone",
                 "pipe": "pipe (1 MiB)",
                 "unix": "unix socket", "vdi": "openvdi",
                 "vdi-agent": "openvdi, completion-driven"}
        conds = ["quiet", "loaded", "1cpu", "depth16"]
        for (mode, size, dev, cond), v in sorted(
                stream.items(),
                key=lambda kv: (conds.index(kv[0][3]) if kv[0][3] in conds
                                else 9, kv[0][1], list(names).index(kv[0][0]),
                                kv[0][2])):
            med, lo, hi = spread([x[0] for x in v])
            srv = statistics.median(x[1] for x in v)
            cli = statistics.median(x[2] for x in v)
            steal = sum(x[3] for x in v)
            body.append([names[mode], cond, fmt_size(size), dev, "%.2f" % med,
                         "%.2f-%.2f" % (lo, hi), len(v), "%.3f" % srv,
                         "%.3f" % cli if mode != "inproc" else "-",
                         "%.2f" % steal])
        table("== stream throughput: GB/s (10^9 B/s), median and min-max of "
              "the repetitions; CPU seconds per GiB, producer and consumer "
              "process; the host's steal time over all the repetitions",
              ["path", "conditions", "transfer", "streams", "GB/s", "min-max",
               "n",
               "prod s/GiB", "cons s/GiB", "steal s"], body)
    K64, M1, M4 = 64 << 10, 1 << 20, 4 << 20
    for tag, size in (("64k", K64), ("1m", M1), ("4m", M4)):
        put("stream_%s_vs_pipe" % tag, gbps("vdi", size), gbps("pipe", size),
            "GB/s")
    put("stream_1m_vs_unix", gbps("vdi", M1), gbps("unix", M1), "GB/s")
    put("stream_1m_vs_inprocess", gbps("vdi", M1), gbps("inproc", M1),
        "GB/s")
    put("stream_1m_4dev_vs_1dev", gbps("vdi", M1, 4), gbps("vdi", M1, 1),
        "GB/s")
    # Extras: the other sizes against the socket and in-process, and 4
    # devices against 4 pipes / 4 sockets.
    for tag, size in (("64k", K64), ("4m", M4)):
        put("stream_%s_vs_unix" % tag, gbps("vdi", size), gbps("unix", size),
            "GB/s")
        put("stream_%s_vs_inprocess" % tag, gbps("vdi", size),
            gbps("inproc", size), "GB/s")
    for tag, size in (("64k", K64), ("1m", M1), ("4m", M4)):
        put("stream_%s_agent_vs_pipe" % tag, gbps("vdi-agent", size),
            gbps("pipe", size), "GB/s")
        put("stream_%s_agent_vs_inprocess" % tag, gbps("vdi-agent", size),
            gbps("inproc", size), "GB/s")
    put("stream_1m_agent_vs_unix", gbps("vdi-agent", M1), gbps("unix", M1),
        "GB/s")
    put("stream_1m_4dev_vs_4pipes", gbps("vdi", M1, 4), gbps("pipe", M1, 4),
        "GB/s")
    put("stream_1m_4dev_vs_4unix", gbps("vdi", M1, 4), gbps("unix", M1, 4),
        "GB/s")
    # Issue 11: the same 1 MiB targets with a CPU-bound process beside the
    # bench (every path under the same load), and on one CPU.
    for cond in ("loaded", "1cpu"):
        for peer, name in (("pipe", "pipe"), ("unix", "unix"),
                           ("inproc", "inprocess")):
            put("stream_1m_vs_%s_%s" % (name, cond), gbps("vdi", M1, 1, cond),
                gbps(peer, M1, 1, cond), "GB/s")
    # Against two threads of one process sharing a plain ring: zero copy
    # between two cores without a library or a process boundary.
    for tag, size in (("64k", K64), ("1m", M1), ("4m", M4)):
        put("stream_%s_vs_threads" % tag, gbps("vdi", size),
            gbps("threads", size), "GB/s")
    # The default in flight (half the last-level cache) against 16 MiB per
    # device, more than the cache holds; and against the producer's fill
    # alone on the same ring, the ceiling of any stream it feeds.
    put("stream_1m_vs_depth16", gbps("vdi", M1),
        gbps("vdi", M1, 1, "depth16"), "GB/s")
    put("stream_1m_vs_fill", gbps("vdi", M1), gbps("fill", M1), "GB/s")
    # Under load the scheduler gives a pair of communicating processes one
    # core between them (the table below: CPU seconds over wall seconds),
    # and on one core the work of both cannot pass one thread doing it all
    # (in-process).  This row is what a stream given one core could reach
    # against the pipe under the same load, measured in the same run.
    put("stream_1m_inprocess_vs_pipe_loaded", gbps("inproc", M1, 1, "loaded"),
        gbps("pipe", M1, 1, "loaded"), "GB/s")

    def cores(mode, cond):
        # CPU seconds of both processes over the wall time: how many cores
        # the path got.  x = (GB/s, producer s/GiB, consumer s/GiB).
        v = stream.get((mode, M1, 1, cond))
        if not v:
            return None
        return statistics.median((x[1] + x[2]) * x[0] * 1e9 / GIB for x in v)

    body = []
    for mode in ("vdi", "pipe", "unix"):
        q, ld = cores(mode, "quiet"), cores(mode, "loaded")
        if q is not None and ld is not None:
            body.append([mode, "%.2f" % q, "%.2f" % ld])
    if body:
        table("== cores used by the 1 MiB stream's two processes (CPU "
              "seconds / wall seconds, medians): quiet, and beside one "
              "CPU-bound process", ["path", "quiet", "loaded"], body)
    put("stream_1m_depth16_vs_fill_depth16", gbps("vdi", M1, 1, "depth16"),
        gbps("fill", M1, 1, "depth16"), "GB/s")

    # Each repetition says where the host had the two CPUs just before it
    # (bench_cacheline_us): near (one last-level cache, about 0.1 us) or
    # far.  A path between two CPUs slows when they are far apart.
    NEAR_US = 0.25
    body = []
    for mode in ("vdi", "pipe", "unix", "inproc"):
        v = [x for x in stream.get((mode, M1, 1, "quiet"), []) if x[4] > 0]
        near = [x[0] for x in v if x[4] < NEAR_US]
        far = [x[0] for x in v if x[4] >= NEAR_US]
        if v:
            body.append([mode, len(near),
                         "%.2f" % statistics.median(near) if near else "-",
                         len(far),
                         "%.2f" % statistics.median(far) if far else "-"])
    if body and any(r[3] for r in body):
        table("== the quiet 1 MiB stream by where the host had the two CPUs "
              "(cache-line round trip before each repetition: near < %.2f "
              "us <= far); GB/s medians" % NEAR_US,
              ["path", "near n", "near GB/s", "far n", "far GB/s"], body)

    # ----------------------------------------------------------- latency
    if latency:
        body = []
        for (mode, spin), kv in sorted(latency.items()):
            body.append([mode + (" spin=%dus" % spin if spin >= 0 else ""),
                         kv["rounds"], kv["median_us"], kv["p99_us"],
                         kv["mean_us"], kv["min_us"]])
        table("== round-trip latency, microseconds (one thread each side, "
              "two processes)",
              ["path", "rounds", "median", "p99", "mean", "min"], body)

    def lat(mode, spin=-1):
        kv = latency.get((mode, spin))
        return float(kv["median_us"]) if kv else None

    def lat99(mode, spin=-1):
        kv = latency.get((mode, spin))
        return float(kv["p99_us"]) if kv else None

    put("latency_vs_eventfd", lat("vdi"), lat("eventfd"), "us", False)
    put("latency_vs_pipe", lat("vdi"), lat("pipe"), "us", False)
    put("latency_p99_vs_eventfd", lat99("vdi"), lat99("eventfd"), "us",
        False)
    spins = [s for (m, s) in latency if m == "vdi" and s >= 0]
    if spins:
        s = max(spins)
        put("latency_spin_vs_eventfd", lat("vdi", s), lat("eventfd"), "us",
            False)
        put("latency_spin_vs_nospin", lat("vdi", s), lat("vdi"), "us", False)

    # -------------------------------------------------------- end to end
    def wall(label):
        kv = runs.get(label)
        return float(kv["wall"]) if kv and kv["status"] == "0" else None

    def rss_mib(label, name=None):
        kv = runs.get(label)
        if not kv or kv["status"] != "0":
            return None
        v = kv.get("hwm." + name) if name else kv["maxrss_kib"]
        return int(v) / 1024 if v else None

    if runs:
        sizes = {}
        for kind, kv, _ in rows:
            if kind == "dbsize":
                sizes[kv["mib"]] = int(kv["bytes"])
        body = []
        for label, kv in runs.items():
            if label.startswith("tds_login_"):
                continue  # 40 short runs: only their medians are shown
            sz = label.rsplit("_", 1)[1]
            db = sizes.get(sz)
            t = float(kv["wall"])
            hw = " ".join("%s=%.1f" % (k[4:], int(v) / 1024)
                          for k, v in kv.items() if k.startswith("hwm."))
            body.append([label, "ok" if kv["status"] == "0" else
                         "FAILED %s" % kv["status"], "%.3f" % t,
                         "%.0f" % (db / t / 1e6) if db else "-",
                         "%.2f" % float(kv["cpu"]),
                         kv.get("steal", "-"),
                         "%.1f" % (int(kv["maxrss_kib"]) / 1024), hw])
        table("== end to end (second of two runs, warm page cache; the "
              "host's steal time over all CPUs; wait4 maxrss of the tree, "
              "and per-process VmHWM, MiB)",
              ["run", "status", "wall s", "MB/s", "cpu s", "steal s",
               "maxrss", "VmHWM per process"], body)
    put("backup_vdi_vs_disk", wall("backup_vdi_1024"),
        wall("backup_disk_1024"), "s", False)
    put("backup_vdi_vs_sqlite_backup", wall("backup_vdi_1024"),
        wall("backup_sqlite_1024"), "s", False)
    put("backup_vdi_vs_cp", wall("backup_vdi_1024"), wall("backup_cp_1024"),
        "s", False)
    put("restore_vdi_vs_disk", wall("restore_vdi_1024"),
        wall("restore_disk_1024"), "s", False)
    put("backup_vdi_vs_disk_100m", wall("backup_vdi_100"),
        wall("backup_disk_100"), "s", False)
    put("restore_vdi_vs_disk_100m", wall("restore_vdi_100"),
        wall("restore_disk_100"), "s", False)
    put("rss_1g_vs_100m", rss_mib("backup_vdi_1024"),
        rss_mib("backup_vdi_100"), "MiB", False)
    for name in ("vdi", "vdisql"):
        put("rss_%s_1g_vs_100m" % name, rss_mib("backup_vdi_1024", name),
            rss_mib("backup_vdi_100", name), "MiB", False)
    put("rss_restore_1g_vs_100m", rss_mib("restore_vdi_1024"),
        rss_mib("restore_vdi_100"), "MiB", False)

    # --------------------------------------------------- recovery model
    recsize = {kv["label"]: int(kv["bytes"]) for kind, kv, _ in rows
               if kind == "recsize"}

    def mbps(label):
        t, b = wall(label), recsize.get(label)
        return b / t / 1e6 if t and b else None

    def wall_median(prefix):
        v = [wall(k) for k in runs if k.startswith(prefix + "_r")]
        v = [x for x in v if x]
        return statistics.median(v) if v else None

    put("log_capture_vs_simple", wall_median("log_commits_full"),
        wall_median("log_commits_simple"), "s", False)
    put("backup_log_vs_full", mbps("rec_backup_log"),
        mbps("rec_backup_full"), "MB/s")
    # Here the ratio is the differential's time over the full backup's
    # (the target is at most 0.2).
    put("backup_diff1pct_vs_full", wall("rec_diff1pct"), wall("rec_full1g"),
        "s", True)

    # ------------------------------------------------------------- TDS
    put("backup_tds_vs_cli", wall_median("tds_backup_tds"),
        wall_median("tds_backup_cli"), "s", False)
    put("tds_login_vs_cli", wall_median("tds_login_tds"),
        wall_median("tds_login_cli"), "s", False)

    # ---------------------------------------- backup speed (issue 11)
    # Backups of the 1 GiB database (one stripe; compressed: four),
    # alternating runs: ours, the peer.
    for name, ours, peer in (
            ("backup_64k_vs_1m", "i11_backup_64k", "i11_backup_1m"),
            ("backup_vdi_vs_cp_fsync", "i11_backup_1m", "i11_cp_fsync"),
            ("backup_compress_vs_zstd", "i11_compress", "i11_zstd"),
            ("backup_compress_vs_zstd_fsync", "i11_compress",
             "i11_zstd_fsync"),
            ("backup_compress_medium_vs_zstd", "i11_compress_medium",
             "i11_zstd"),
            # The median of alternating runs replaces the single run of
            # the end-to-end table above where both were measured.
            ("restore_vdi_vs_disk", "i11_restore_vdi", "i11_restore_disk")):
        put(name, wall_median(ours), wall_median(peer), "s", False)

    # -------------------------------------------------------------- S3
    put("backup_s3_vs_awscli", wall_median("s3_vdi"), wall_median("s3_awscli"),
        "s", False)
    put("backup_s3_encrypted_vs_plain", wall_median("s3_vdi_enc"),
        wall_median("s3_vdi"), "s", False)

    if results:
        body = [[k, "%.3f" % v["ours"], "%.3f" % v["peer"], v["unit"],
                 "%.2f" % v["ratio"]] for k, v in results.items()]
        table("== comparisons (ratio > 1: openvdi is better)",
              ["comparison", "ours", "peer", "unit", "ratio"], body)
    with open(out_json, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print("wrote %s (%d comparisons)" % (out_json, len(results)))

    # ------------------------------------------------------------- chart
    if not stream:
        return
    if shutil.which("gnuplot") is None:
        print("gnuplot is not installed (Debian: gnuplot-nox): no chart")
        return
    series = [("inproc", 1, "in-process, no IPC"), ("pipe", 1, "pipe"),
              ("unix", 1, "unix socket"), ("vdi", 1, "openvdi, 1 device"),
              ("vdi", 2, "openvdi, 2 devices"),
              ("vdi", 4, "openvdi, 4 devices"),
              ("vdi-agent", 1, "openvdi completion-driven, 1 device"),
              ("vdi-agent", 4, "openvdi completion-driven, 4 devices")]
    series = [s for s in series if any(k[0] == s[0] and k[2] == s[1]
                                       for k in stream)]
    sizes = sorted({k[1] for k in stream})
    dat = out_png + ".dat"
    with open(dat, "w") as f:
        for size in sizes:
            vals = [gbps(m, size, d) for m, d, _ in series]
            f.write("%d %s\n" % (size >> 10, " ".join(
                "%.4f" % v if v else "NaN" for v in vals)))
    plot = ", ".join("'%s' using 1:%d with linespoints lw 2 title '%s'"
                     % (dat, i + 2, t) for i, (_, _, t) in enumerate(series))
    script = """set terminal png size 800,640
set output '%s'
set title 'Stream throughput against transfer size (%s, %s cores)'
set xlabel 'transfer size (KiB)'
set ylabel 'GB/s (median of repetitions)'
set logscale x 2
set xtics (64, 256, 1024, 4096)
set xrange [48:5600]
set yrange [0:*]
set key below
set grid
plot %s
""" % (out_png, machine.get("cpu", "?"), machine.get("cores", "?"), plot)
    r = subprocess.run(["gnuplot"], input=script, text=True)
    os.unlink(dat)
    if r.returncode == 0:
        print("wrote %s" % out_png)
    else:
        print("gnuplot failed; no chart")


if __name__ == "__main__":
    main()
