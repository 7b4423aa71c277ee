#!/usr/bin/env python3
"""`import --site` from packed volumes through one "USB port", before and after: wall time,
bytes read, insertions. Used by scripts/bench_site.sh, which makes the inputs (scripts/demo.sh
--keep: a signed bundle of images, a chart, K3s files and apt packages, packed into volumes).

    bench_site.py --usb DIR --site DIR --bin NAME=PATH [--bin NAME=PATH ...] [--runs N]

For every binary and run: a fresh docker-registry (the Harbor stand-in) and fresh mirror
directories; volume 1 alone in the port; every "volume N is needed" prompt answered by putting
volume N alone in the port (so each prompt is one insertion, as with one USB port and a pile
of sticks). Bytes read are the process's read() bytes (/proc/PID/io rchar, polled: the volumes
dominate; registry answers are small), and, when ferry reports it, its own `bytes_read`.
Prints one JSON object per binary (medians) and a Markdown table.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work):
    port = free_port()
    storage = os.path.join(work, "registry-storage")
    os.makedirs(storage)
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
            f"storage:\n  filesystem: {{rootdirectory: \"{storage}\"}}\n"
            f"http: {{addr: \"127.0.0.1:{port}\", secret: bench}}\n"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.Popen(
        ["docker-registry", "serve", config],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("docker-registry did not start")


def volumes(usb):
    return sorted(n for n in os.listdir(usb) if n.endswith(".tar") or n.endswith(".tar.zst"))


def insert(usb, port, name):
    for n in os.listdir(port):
        os.remove(os.path.join(port, n))
    part = os.path.join(port, ".inserting")
    shutil.copyfile(os.path.join(usb, name), part)
    os.rename(part, os.path.join(port, name))


def one_run(binary, usb, site_src, password):
    work = tempfile.mkdtemp(prefix="ferry-bench-site.")
    registry, host = start_registry(work)
    try:
        site = os.path.join(work, "site")
        os.makedirs(os.path.join(site, "keys"))
        shutil.copy(os.path.join(site_src, "keys", "ferry-apt-secret.asc"), os.path.join(site, "keys"))
        with open(os.path.join(site, "site.yaml"), "w") as f:
            f.write(
                "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {name: bench}\nspec:\n"
                f"  registry: {{host: \"{host}\", insecure: true}}\n"
                "  apt: {dir: mirror/apt, signingKey: keys/ferry-apt-secret.asc, suite: ferry}\n"
                "  charts: {dir: mirror/charts}\n"
                "  files: {dir: mirror/files, k3sAirgapDir: airgap}\n"
            )
        port = os.path.join(work, "port")
        os.makedirs(port)
        first = volumes(usb)[0]
        insert(usb, port, first)
        env = dict(os.environ, FERRY_KEY_PASSWORD=password, NO_COLOR="1")
        started = time.monotonic()
        proc = subprocess.Popen(
            [binary, "--output", "json", "import", port, "--site", os.path.join(site, "site.yaml"),
             "--key", os.path.join(site_src, "cosign.pub"), "--volumes-dir", port, "--wait"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        prompts = []
        stderr = []

        def answer():
            for line in proc.stderr:
                stderr.append(line)
                if "is needed: insert the medium holding " in line:
                    number = int(line.split("volume ", 1)[1].split(" ", 1)[0])
                    name = line.split("insert the medium holding ", 1)[1].split(" ", 1)[0]
                    prompts.append(number)
                    insert(usb, port, name)

        reader = threading.Thread(target=answer)
        reader.start()
        rchar = 0
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/io") as f:
                    for line in f:
                        if line.startswith("rchar:"):
                            rchar = max(rchar, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.01)
        out = proc.stdout.read()
        reader.join()
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"{binary} failed:\n{''.join(stderr)}")
        summary = json.loads(out)
        return {
            "seconds": seconds,
            "insertions": 1 + len(prompts),
            "prompts": prompts,
            "rchar": rchar,
            "bytes_read": summary.get("bytes_read"),
            "bundle_bytes": summary.get("bundle_bytes"),
        }
    finally:
        registry.kill()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--usb", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--password", default=os.environ.get("FERRY_KEY_PASSWORD", "demo-password"))
    args = ap.parse_args()
    vols = volumes(args.usb)
    bundle_files = sum(os.path.getsize(os.path.join(args.usb, v)) for v in vols)
    rows = []
    for spec in args.bin:
        name, path = spec.split("=", 1)
        runs = [one_run(path, args.usb, args.site, args.password) for _ in range(args.runs)]
        row = {
            "binary": name,
            "volumes": len(vols),
            "volume_bytes": bundle_files,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "insertions": statistics.median(r["insertions"] for r in runs),
            "prompts": runs[0]["prompts"],
            "rchar": statistics.median(r["rchar"] for r in runs),
            "bytes_read": runs[0]["bytes_read"],
            "bundle_bytes": runs[0]["bundle_bytes"],
        }
        print(json.dumps(row))
        rows.append(row)
    print()
    print("| binary | volumes | insertions | volumes asked for | read (rchar) / volume bytes | bytes_read / bundle | wall time (median) |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for r in rows:
        own = (
            f"{r['bytes_read'] / r['bundle_bytes']:.2f}x" if r["bytes_read"] and r["bundle_bytes"] else "-"
        )
        print(
            f"| {r['binary']} | {r['volumes']} | {r['insertions']:g} | 1, {', '.join(map(str, r['prompts']))} "
            f"| {r['rchar'] / r['volume_bytes']:.2f}x | {own} | {r['seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
