#!/usr/bin/env python3
"""Backup and restore figures for docs/BENCHMARKS.md, with tar baselines in the same run.

Usage: scripts/bench-backup.py [--counts 10000,100000] [--reps 3] [--work DIR]
Needs release binaries: cargo build --release -p bpv -p bpv-bench

For each corpus size: full backup vs `tar --zstd -cf`, an unchanged backup as a share
of the full one, a backup after 1% of the blueprints changed, verify throughput, and
restore (which re-hashes every file) vs `tar -xf`; then the unchanged and 1%-changed
backups as the app takes them, with the watcher running (`bpv-bench watched-backup`). Warm page cache for both sides;
medians of --reps runs, interleaved so load from other work hits both alike.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPV = os.path.join(ROOT, "target", "release", "bpv")
BENCH = os.path.join(ROOT, "target", "release", "bpv-bench")


def run(cmd, **kw):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.perf_counter() - t, out.stdout


def bpv(lib, data, *args):
    secs, out = run([BPV, "--library", lib, "--data-dir", data, "--json", *args])
    return secs, json.loads(out) if out.strip() else None


def rm(p):
    shutil.rmtree(p, ignore_errors=True)


def du(p):
    total = 0
    for d, _, files in os.walk(p):
        for f in files:
            total += os.lstat(os.path.join(d, f)).st_size
    return total


def bench(count, reps, work):
    lib = os.path.join(work, f"lib{count}")
    data = os.path.join(work, f"data{count}")
    if not os.path.isdir(lib):
        run([BENCH, "corpus", "--out", lib, "--count", str(count)])
        # The corpus manifest is not part of the library for this measurement.
    bpv(lib, data, "reindex")
    repo = os.path.join(work, f"repo{count}")
    tarball = os.path.join(work, f"lib{count}.tar.zst")
    res = {"count": count, "files": 0, "bytes": 0}
    full_bpv, full_tar, full_ms, unchanged, unchanged_ms = [], [], [], [], []
    for _ in range(reps):
        rm(repo)
        if os.path.exists(tarball):
            os.remove(tarball)
        subprocess.run(["sync"])
        s, r = bpv(lib, data, "backup", "--to", repo)
        full_bpv.append(s)
        full_ms.append(r["millis"])
        res.update(files=r["files"], bytes=r["bytes"], new_bytes=r["new_bytes"], full_id=r["id"])
        subprocess.run(["sync"])
        s, _ = run(["tar", "--zstd", "-cf", tarball, "-C", lib, "."])
        full_tar.append(s)
        s, r2 = bpv(lib, data, "backup", "--to", repo)
        unchanged.append(s)
        unchanged_ms.append(r2["millis"])
        res["unchanged_new_bytes"] = r2["new_bytes"]
    res["tar_bytes"] = os.path.getsize(tarball)
    res["repo_bytes"] = du(repo)
    res["full_s"] = statistics.median(full_bpv)
    res["full_engine_ms"] = statistics.median(full_ms)
    res["tar_s"] = statistics.median(full_tar)
    res["unchanged_s"] = statistics.median(unchanged)
    res["unchanged_engine_ms"] = statistics.median(unchanged_ms)

    # 1% of the blueprints change (a line appended), then a backup.
    names = []
    for d, _, files in os.walk(os.path.join(lib, "Blueprints")):
        names += [os.path.join(d, f) for f in files if f.endswith(".blueprint.yaml")]
    names.sort()
    changed = names[:: max(1, len(names) // max(1, len(names) // 100))][: max(1, len(names) // 100)]
    stamp = time.time_ns()
    for p in changed:
        with open(p, "ab") as f:
            f.write(f"\n# changed {stamp}\n".encode())
    s, r = bpv(lib, data, "backup", "--to", repo)
    res["changed_files"] = len(changed)
    res["changed_s"] = s
    res["changed_engine_ms"] = r["millis"]
    res["changed_new_bytes"] = r["new_bytes"]
    res["changed_list_bytes"] = r.get("list_bytes", 0)
    last = r["id"]

    verify_s, verify_mbps, restore_s, untar_s = [], [], [], []
    for _ in range(reps):
        s, v = bpv(lib, data, "verify", last, "--from", repo)
        verify_s.append(s)
        verify_mbps.append(v["bytes"] / 1e6 / (v["millis"] / 1000.0))
        out = os.path.join(work, f"restore{count}")
        rm(out)
        subprocess.run(["sync"])
        s, _ = bpv(lib, data, "restore", last, "--from", repo, "--to", out)
        restore_s.append(s)
        rm(out)
        os.makedirs(out)
        subprocess.run(["sync"])
        s, _ = run(["tar", "-xf", tarball, "-C", out])
        untar_s.append(s)
        rm(out)
        rm(os.path.join(data, "libraries"))  # restored libraries' private areas
    res["verify_s"] = statistics.median(verify_s)
    res["verify_MBps"] = statistics.median(verify_mbps)
    res["restore_s"] = statistics.median(restore_s)
    res["untar_s"] = statistics.median(untar_s)
    # As the app takes them: the watcher runs, its journal names what changed.
    _, out = run([BENCH, "watched-backup", "--library", lib, "--data-dir", data, "--repo", repo,
                  "--reps", str(max(3, reps))])
    w = json.loads(out)
    res["watched_unchanged_s"] = w["unchanged_ms"] / 1e3
    res["watched_unchanged_journal"] = w["unchanged_journal"]
    res["watched_unchanged_new_bytes"] = w["unchanged_new_bytes"]
    res["watched_changed_files"] = w["changed_files"]
    res["watched_changed_s"] = w["changed_ms"] / 1e3
    res["watched_changed_new_bytes"] = w["changed_new_bytes"]
    res["watched_changed_list_bytes"] = w["changed_list_bytes"]
    res["watched_unchanged_vs_tar"] = res["watched_unchanged_s"] / res["tar_s"]
    res["full_vs_tar"] = res["tar_s"] / res["full_s"]
    res["unchanged_share"] = res["unchanged_s"] / res["full_s"]
    res["unchanged_vs_tar"] = res["unchanged_s"] / res["tar_s"]
    res["restore_vs_untar"] = res["untar_s"] / res["restore_s"]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default="/tmp/bpv-bench-backup")
    a = ap.parse_args()
    for exe in (BPV, BENCH):
        if not os.path.exists(exe):
            sys.exit(f"missing {exe}: cargo build --release -p bpv -p bpv-bench")
    os.makedirs(a.work, exist_ok=True)
    for n in [int(x) for x in a.counts.split(",")]:
        print(json.dumps(bench(n, a.reps, a.work)), flush=True)


if __name__ == "__main__":
    main()
