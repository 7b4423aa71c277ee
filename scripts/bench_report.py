#!/usr/bin/env python3
"""Turns the raw results of scripts/bench.sh into BENCHMARKS.md and benchmarks.json.

Reads RUN/results/NAME.json (hyperfine), RUN/results/KEY.value (numbers the script recorded),
RUN/mem/NAME (peak resident memory of every run, KiB, from /usr/bin/time) and the corpus
summary. In BENCHMARKS.md only the section between the markers for this scale is replaced
(hand-written text around it, such as "Analysis", is kept); in benchmarks.json only this
scale's entry. Python standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

MIB = 1024 * 1024

# (row label, ferry result, peer label, peer result); a result name is a hyperfine --command-name.
ROWS = [
    ("pull", "pull.ferry", "skopeo sync --all (docker → dir)", "pull.skopeo"),
    ("verify", "verify.ferry", "sha256sum --check", "verify.sha256sum"),
    ("verify", "verify.ferry", "openssl dgst -sha256 (sequential)", "verify.openssl"),
    ("pack", "pack.ferry", "tar -cf", "pack.tar"),
    ("push", "push.ferry", "skopeo sync --all (dir → docker)", "push.skopeo"),
    ("push again (nothing to upload)", "push-again.ferry", "first ferry import", "push.ferry"),
    ("serve (ctr images pull, every image)", "serve.ferry", "docker-registry", "serve.registry"),
    ("serve, fetch only (ctr content fetch)", "serve-fetch.ferry", "docker-registry", "serve-fetch.registry"),
    ("serve, server alone (curl, every blob)", "serve-http.ferry", "docker-registry", "serve-http.registry"),
]


def main():
    p = argparse.ArgumentParser()
    for flag in ("run", "corpus", "scale", "runs", "command", "ferry", "repo", "markdown", "json"):
        p.add_argument("--" + flag, required=True)
    args = p.parse_args()
    run = Path(args.run)
    report = build_report(args, run)
    write_json(Path(args.json), args.scale, report)
    write_markdown(Path(args.markdown), args.scale, render(report))


# --- Reading the raw results ------------------------------------------------------------------


def value(run, key, default=None):
    path = run / "results" / f"{key}.value"
    if not path.exists():
        return default
    text = path.read_text().strip()
    try:
        return int(text)
    except ValueError:
        return text


def timing(run, name):
    """The runs of `name` (one hyperfine JSON per run, or one for all), with its peak memory;
    None if it did not run."""
    files = sorted(run.glob(f"results/{name}.run*.json"), key=lambda f: int(f.stem.rsplit("run", 1)[1]))
    files = files or sorted(run.glob(f"results/{name}.json"))
    if not files:
        return None
    results = [json.loads(f.read_text())["results"][0] for f in files]
    times = [t for r in results for t in r["times"]]
    user = statistics.mean(r["user"] for r in results)
    system = statistics.mean(r["system"] for r in results)
    mem = run / "mem" / name
    peak = None
    if mem.exists():
        kib = [int(line) for line in mem.read_text().split() if line.strip().isdigit()]
        peak = max(kib) * 1024 if kib else None
    command = (run / "results" / f"{name}.command").read_text().strip()
    return {
        "command": command,
        "median_s": statistics.median(times),
        "mean_s": statistics.mean(times),
        "stddev_s": statistics.stdev(times) if len(times) > 1 else None,
        "min_s": min(times),
        "max_s": max(times),
        "user_s": user,
        "system_s": system,
        "times_s": times,
        "peak_rss_bytes": peak,
    }


def server_peak(run, name):
    path = run / "mem" / name
    if path.exists() and path.read_text().strip().isdigit():
        return int(path.read_text().strip()) * 1024
    return None


def sh(*cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(run):
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    df = subprocess.run(["df", "-PT", str(run)], capture_output=True, text=True).stdout.splitlines()
    device, fstype, size_kib = (df[1].split()[0], df[1].split()[1], int(df[1].split()[2])) if len(df) > 1 else ("", "", 0)
    rotational = ""
    name = os.path.basename(device)
    for candidate in (name, re.sub(r"p?\d+$", "", name)):
        rot = Path(f"/sys/block/{candidate}/queue/rotational")
        if rot.exists():
            rotational = "rotational" if rot.read_text().strip() == "1" else "non-rotational"
            break
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_bytes": mem_kib * 1024,
        "disk": f"{device} ({fstype}, {size_kib * 1024 / 2**30:.0f} GiB, {rotational or 'unknown type'})",
        "kernel": platform.release(),
        "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "load_average_before": value(run, "loadavg.before"),
        "load_average_after": Path("/proc/loadavg").read_text().split(" ", 3)[:3],
    }


def versions(args):
    ferry = sh(args.ferry, "--version")
    # The last commit that changed ferry's source, and whether the source differs from it.
    source = ["--", "src", "Cargo.toml", "Cargo.lock"]
    commit = sh("git", "-C", args.repo, "log", "-1", "--format=%h", *source)
    dirty = sh("git", "-C", args.repo, "status", "--porcelain", "--untracked-files=no", *source)
    return {
        "ferry": f"{ferry} (source of commit {commit}{', modified' if dirty else ''})",
        "skopeo": sh("skopeo", "--version"),
        "docker-registry": sh("docker-registry", "--version"),
        "containerd": sh("ctr", "--version"),
        "tar": sh("tar", "--version"),
        "sha256sum": sh("sha256sum", "--version"),
        "openssl": sh("openssl", "version"),
        "hyperfine": sh("hyperfine", "--version"),
    }


# --- The report -------------------------------------------------------------------------------


def build_report(args, run):
    corpus = json.loads((Path(args.corpus) / "corpus.json").read_text())
    unique = corpus["unique_bytes"]
    rows = []
    for label, ferry_name, peer_label, peer_name in ROWS:
        ferry = timing(run, ferry_name)
        peer = timing(run, peer_name)
        missing = None
        step = ferry_name.split(".")[0]
        if ferry is None:
            missing = value(run, f"{step.split('-')[0]}.missing") or value(run, f"{ferry_name}.missing") or "not measured"
        row = {"step": label, "ferry": ferry, "peer_name": peer_label, "peer": peer, "ferry_missing": missing}
        if ferry and peer:
            row["ratio"] = peer["median_s"] / ferry["median_s"]
        if ferry and step != "push-again":
            row["throughput_bytes_per_s"] = unique / ferry["median_s"]
        if step.startswith("serve"):
            # /usr/bin/time measured the ctr clients; what counts is the server (VmHWM).
            for side, server in ((ferry, "serve.ferry.server"), (peer, "serve.registry.server")):
                if side:
                    side["client_peak_rss_bytes"] = side["peak_rss_bytes"]
                    side["peak_rss_bytes"] = server_peak(run, server)
                    side["peak_rss_is_server"] = True
        rows.append(row)

    stored = {
        "unique_bytes": unique,
        "ferry_bundle_bytes": value(run, "pull.ferry.bytes"),
        "ferry_blob_bytes": value(run, "bundle_blob_bytes"),
        "skopeo_dir_bytes": value(run, "pull.skopeo.bytes"),
    }
    return {
        "scale": args.scale,
        # When the measurements ended (the report can be regenerated later from the raw results).
        "date": datetime.datetime.fromtimestamp(
            (run / "results" / "duration_seconds.value").stat().st_mtime, datetime.timezone.utc
        ).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command,
        "runs": int(args.runs),
        "duration_seconds": value(run, "duration_seconds"),
        "machine": machine(run),
        "versions": versions(args),
        "corpus": corpus,
        "stored": stored,
        "rows": rows,
        "targets": targets(rows, stored),
    }


def row(rows, ferry_name, peer_name):
    for (_, f, _, p), r in zip(ROWS, rows):
        if f == ferry_name and p == peer_name:
            return r
    raise KeyError(ferry_name)


def targets(rows, stored):
    """Each target of the issue: what it asks, what was measured, whether it was met (None: not measured)."""
    out = []

    def ratio_target(text, ferry_name, peer_name, at_least):
        r = row(rows, ferry_name, peer_name)
        ratio = r.get("ratio")
        measured = f"{ratio:.2f}x" if ratio else (r.get("ferry_missing") or "not measured")
        if ratio is not None and ratio < at_least:
            # Say so when the miss is smaller than the run-to-run spread of either side.
            f, p = r["ferry"], r["peer"]
            gap = abs(p["median_s"] / at_least - f["median_s"])
            spread = max(f.get("stddev_s") or 0, p.get("stddev_s") or 0)
            if gap < spread:
                measured += f" (the miss, {gap:.2f} s, is within the run-to-run spread of ± {spread:.2f} s)"
        out.append({"target": text, "measured": measured, "met": None if ratio is None else ratio >= at_least})

    ratio_target("pull at least 2x faster than skopeo sync", "pull.ferry", "pull.skopeo", 2.0)
    # The bundle holds the unique blobs plus index.json, oci-layout, the lock and directory entries.
    allowance = 1 * MIB
    b = stored["ferry_bundle_bytes"]
    out.append({
        "target": "pull stores no more than the unique bytes (+1 MiB for index.json, lock, directories)",
        "measured": f"{b} bytes stored, {stored['unique_bytes']} unique" if b else "not measured",
        "met": None if not b else b <= stored["unique_bytes"] + allowance,
    })
    ratio_target("verify at least 4x faster than GNU sha256sum", "verify.ferry", "verify.sha256sum", 4.0)
    ratio_target("verify at least 1.3x faster than sequential openssl", "verify.ferry", "verify.openssl", 1.3)
    # pack no slower than 1.15x tar: ferry/tar <= 1.15, i.e. tar/ferry >= 1/1.15.
    ratio_target("pack no slower than 1.15x GNU tar", "pack.ferry", "pack.tar", 1 / 1.15)
    ratio_target("push at least 2x faster than skopeo sync", "push.ferry", "push.skopeo", 2.0)
    r = row(rows, "push-again.ferry", "push.ferry")
    share = 1 / r["ratio"] if r.get("ratio") else None
    out.append({
        "target": "a second import under 5% of the first import's time",
        "measured": f"{share * 100:.1f}%" if share else (r.get("ferry_missing") or "not measured"),
        "met": None if share is None else share < 0.05,
    })
    ratio_target("serve no slower than docker-registry (ctr images pull)", "serve.ferry", "serve.registry", 1.0)
    # The same target with the client out of the way (not in the issue; it shows the server).
    ratio_target("serve no slower than docker-registry, server alone (curl)", "serve-http.ferry", "serve-http.registry", 1.0)
    peaks = []
    for r in rows:
        if r["ferry"] and r["ferry"]["peak_rss_bytes"]:
            peaks.append((r["step"], r["ferry"]["peak_rss_bytes"]))
    worst = max(peaks, key=lambda p: p[1]) if peaks else None
    out.append({
        "target": "peak memory under 100 MiB for every step",
        "measured": f"highest: {worst[1] / MIB:.0f} MiB ({worst[0]})" if worst else "not measured",
        "met": None if worst is None else worst[1] < 100 * MIB,
    })
    return out


# --- Rendering --------------------------------------------------------------------------------


def seconds(t):
    return f"{t:.3f} s" if t < 10 else f"{t:.1f} s"


def timing_cell(t):
    spread = f" ± {t['stddev_s']:.2f}" if t.get("stddev_s") else ""
    return f"{seconds(t['median_s'])}{spread}"


def size(b):
    return f"{b / MIB:,.1f} MiB" if b < 10 * 2**30 else f"{b / 2**30:,.2f} GiB"


def render(rep):
    m, c, s = rep["machine"], rep["corpus"], rep["stored"]
    lines = [
        f"## `--scale {rep['scale']}`",
        "",
        f"Measured {rep['date']} with `{rep['command']}`: every command ran once to warm up, then "
        f"{rep['runs']} timed run(s), interleaved with its peer's; the table shows the median "
        f"(± standard deviation). "
        f"The whole run took {rep['duration_seconds'] // 60} min {rep['duration_seconds'] % 60} s.",
        "",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.0f} GiB RAM, disk {m['disk']}; "
        f"{m['os']}, Linux {m['kernel']}. Load average before/after: "
        f"{m['load_average_before'] or '?'} / {' '.join(m['load_average_after'])}.",
        f"- **Corpus** (generator v{c['generator_version']}): {c['images']} images "
        f"({c['multi_arch_images']} linux/amd64 + linux/arm64 indexes), {c['layers']} distinct layers, "
        f"{c['blobs']} blobs, {size(c['unique_bytes'])} of unique content; largest blob "
        f"{size(c['largest_blob'])}, smallest layer {c['smallest_layer']:,} bytes.",
        "- **Versions:** " + "; ".join(f"{k} `{v}`" for k, v in rep["versions"].items() if v) + ".",
        "",
        "| step | ferry | peer | ratio | throughput | peak memory |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rep["rows"]:
        f, p = r["ferry"], r["peer"]
        ferry_cell = timing_cell(f) if f else f"*{r['ferry_missing']}*"
        peer_cell = f"{r['peer_name']}: {timing_cell(p)}" if p else f"{r['peer_name']}: not measured"
        if r["step"].startswith("push again") and r.get("ratio"):
            ratio = f"{100 / r['ratio']:.1f}% of the first"
        elif r.get("ratio"):
            ratio = f"{r['ratio']:.2f}x" + (" faster" if r["ratio"] >= 1 else " (slower)")
        else:
            ratio = "—"
        tput = f"{r['throughput_bytes_per_s'] / MIB:,.0f} MiB/s" if r.get("throughput_bytes_per_s") else "—"
        if f and f["peak_rss_bytes"]:
            mem = f"{f['peak_rss_bytes'] / MIB:.0f} MiB" + (" (server)" if f.get("peak_rss_is_server") else "")
        else:
            mem = "—"
        lines.append(f"| {r['step']} | {ferry_cell} | {peer_cell} | {ratio} | {tput} | {mem} |")
    lines += [
        "",
        f"Bytes stored by the pull (`du -sb`): ferry's bundle {s['ferry_bundle_bytes']:,} "
        f"(blobs {s['ferry_blob_bytes']:,}), skopeo's directories {s['skopeo_dir_bytes']:,}; "
        f"the corpus has {s['unique_bytes']:,} unique bytes.",
        "Ratio: the peer's median time over ferry's (above 1: ferry is faster). Throughput: the "
        "corpus' unique bytes over ferry's median time. Peak memory: the largest resident set of "
        "any run of the ferry command (`/usr/bin/time`); for serve, the server process (`VmHWM`).",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for t in rep["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured yet"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    return "\n".join(lines)


INTRO = """# Benchmarks

`scripts/bench.sh` measures ferry against the tools a release engineer or site admin would use
without it, side by side in the same run, on the same data: a generated corpus resembling a
platform release (40 images, shared base layers, multi-arch indexes, gzip'd tar layers of
compressible text and incompressible random data) served by a real `docker-registry` on
loopback. Every command runs once to warm the page cache, then `--runs N` times with hyperfine,
its runs interleaved with its peer's so that a change of load on the machine weighs on both
sides alike; `--prepare` resets the state before each run (output removed, target registry
restarted empty, containerd restarted with an empty content store). The median counts.

```sh
scripts/bench.sh --scale small      # ~400 MiB corpus, about 10 minutes
scripts/bench.sh --scale full       # ~4 GiB corpus with a 1 GiB layer; needs ~45 GiB of disk
```

The steps: **pull** `ferry build` vs `skopeo sync --all --src yaml --dest dir`; **verify**
`ferry verify --no-signature` vs `sha256sum --check` and `openssl dgst -sha256` over every blob
(sequential); **pack** `ferry pack` vs `tar -cf`; **push** `ferry import registry` vs `skopeo
sync --all --src dir --dest docker` into empty registries, then a second `ferry import` with
nothing to upload; **serve** `ctr images pull --all-platforms` of every image from `ferry serve`
vs from `docker-registry`, then `ctr content fetch` (the fetch alone) and `curl` fetching every
blob once (the server alone). The sections between the `GENERATED` markers are rewritten by each
run of their scale; the rest of this file is kept.
"""


def write_markdown(path, scale, section):
    begin, end = f"<!-- BEGIN GENERATED: {scale} -->", f"<!-- END GENERATED: {scale} -->"
    block = f"{begin}\n{section}\n{end}"
    text = path.read_text() if path.exists() else INTRO + "\n## Analysis\n\n(to be written)\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    elif "\n## Analysis" in text:
        i = text.index("\n## Analysis")
        text = text[:i] + "\n" + block + "\n" + text[i:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def write_json(path, scale, report):
    data = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data.setdefault("scales", {})[scale] = report
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
