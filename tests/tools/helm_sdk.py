"""Drives Helm v4 through helm-python-sdk (Helm's Go SDK as a library) for tests/charts.rs.

Usage: python helm_sdk.py COMMAND ARGS...; prints one JSON document on success.
  version                                   SDK and Helm versions
  create NAME DIR [APP_VERSION]             `helm create` scaffold in DIR/NAME
  package CHART_DIR DEST [VERSION]          `helm package`; prints the archive path
  touch-as-packaged TGZ                     set the file's mtime to its Chart.yaml's tar mtime
  index DIR                                 `helm repo index DIR` (relative URLs)
  push TGZ oci://HOST/PATH                  `helm push --plain-http`
  pull-http NAME REPO_URL VERSION DEST      `helm pull NAME --repo REPO_URL --version V`
  pull-oci oci://HOST/PATH/NAME VERSION DEST  `helm pull --plain-http`
  tags oci://HOST/PATH/NAME                 semver tags, newest first
  resolve oci://HOST/PATH/NAME:TAG          manifest descriptor
  repo-index REPO_URL                       download and parse index.yaml
  digest TGZ                                the archive digest Helm computes
"""

import json
import os
import sys
import tarfile

import helm_python as helm


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "version":
        out = {"helm_c": helm.helm_c_version(), "helm": helm.helm_sdk_version()}
    elif cmd == "create":
        name, directory = args[0], args[1]
        os.makedirs(directory, exist_ok=True)
        with helm.Chart.create(name, directory) as chart:
            out = {"name": chart.name, "version": chart.version}
    elif cmd == "package":
        opts = {"destination": args[1]}
        if len(args) > 2:
            opts["version"] = args[2]
        os.makedirs(args[1], exist_ok=True)
        out = {"path": helm.package(args[0], **opts)}
    elif cmd == "touch-as-packaged":
        with tarfile.open(args[0], "r:gz") as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/Chart.yaml"))
        os.utime(args[0], (member.mtime, member.mtime))
        out = {"mtime": member.mtime}
    elif cmd == "index":
        out = helm.repo_index_generate(args[0])
    elif cmd == "push":
        out = helm.push(args[0], args[1], plain_http=True)
    elif cmd == "pull-http":
        os.makedirs(args[3], exist_ok=True)
        out = helm.pull(args[0], repo_url=args[1], version=args[2], destination=args[3])
    elif cmd == "pull-oci":
        os.makedirs(args[2], exist_ok=True)
        out = helm.pull(args[0], version=args[1], destination=args[2], plain_http=True)
    elif cmd == "tags":
        with helm.RegistryClient(plain_http=True) as client:
            out = client.tags(args[0])
    elif cmd == "resolve":
        with helm.RegistryClient(plain_http=True) as client:
            out = client.resolve(args[0])
    elif cmd == "repo-index":
        out = helm.repo_index(args[0])
    elif cmd == "digest":
        out = {"digest": helm.digest(args[0])}
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
