"""The `helm` command line, as far as ferry uses it, on Helm's own engine (helm-python-sdk).

  helm version [--short]
  helm template NAME CHART [-n|--namespace NS] [--kube-version V] [-a|--api-versions X]...
                [--include-crds] [--skip-tests] [-f|--values FILE]...

CHART is a chart archive (.tgz) or directory. Values files merge in order as Helm merges
them (mappings merge, other values replace); the chart's own values, its subcharts'
conditions, tags and the parent's overrides are applied by Helm's engine. Output is what
`helm template` prints: `---`, `# Source: <template>`, the rendered document, CRDs first with
--include-crds. Errors go to stderr as `Error: <message>` with exit code 1.
"""

import json
import re
import sys

import helm_python as helm
from helm_python import _native

HOOK_TEST = re.compile(r"""^\s*["']?helm\.sh/hook["']?\s*:\s*["']?[^"'\n]*\btest\b""", re.M)


def merge(base, over):
    """Helm's mergeMaps: mappings merge key by key, anything else replaces."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


# Helm's releaseutil.SplitManifests separator: `---` at a line start, whatever follows it.
SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


def documents(text):
    """Splits a rendered file into its YAML documents, as Helm does."""
    parts = SEPARATOR.split(text)
    return [p.strip("\n") for p in parts if p.strip() and any(
        l.strip() and not l.lstrip().startswith("#") for l in p.splitlines())]


def template(args):
    positional, values_files, api_versions = [], [], []
    namespace, kube_version, include_crds, skip_tests = "default", None, False, False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace"):
            namespace = args[i + 1]; i += 2; continue
        if a.startswith("--namespace="):
            namespace = a.split("=", 1)[1]; i += 1; continue
        if a == "--kube-version":
            kube_version = args[i + 1]; i += 2; continue
        if a in ("-a", "--api-versions"):
            api_versions.append(args[i + 1]); i += 2; continue
        if a in ("-f", "--values"):
            values_files.append(args[i + 1]); i += 2; continue
        if a == "--include-crds":
            include_crds = True; i += 1; continue
        if a == "--skip-tests":
            skip_tests = True; i += 1; continue
        if a.startswith("-"):
            raise SystemExit(f"Error: unknown flag: {a}")
        positional.append(a); i += 1
    if len(positional) != 2:
        raise SystemExit("Error: helm template needs NAME and CHART")
    name, chart_path = positional
    values = {}
    for path in values_files:
        with open(path, encoding="utf-8") as f:
            merge(values, helm.values_from_yaml(f.read()) or {})
    if chart_path.endswith(".tgz") or chart_path.endswith(".tar.gz"):
        with open(chart_path, "rb") as f:
            chart = helm.Chart.load_archive(f.read())
    else:
        chart = helm.Chart.load(chart_path)
    opts = {"name": name, "namespace": namespace, "is_install": True}
    if kube_version:
        opts["kube_version"] = kube_version
    if api_versions:
        opts["api_versions"] = api_versions
    rendered = json.loads(_native.call_string(
        "helm_render", chart._raw(), json.dumps(values), json.dumps(opts)))
    out = []
    if include_crds:
        for crd in chart.crds:
            for doc in documents(crd["data"]):
                out.append(f"---\n# Source: {crd['filename']}\n{doc}\n")
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for doc in documents(rendered[path]):
            if skip_tests and HOOK_TEST.search(doc):
                continue
            out.append(f"---\n# Source: {path}\n{doc}\n")
    sys.stdout.write("".join(out))


def main(argv):
    if not argv:
        raise SystemExit("Error: no command")
    cmd, args = argv[0], argv[1:]
    if cmd == "version":
        print(helm.helm_sdk_version())
    elif cmd == "template":
        template(args)
    else:
        raise SystemExit(f"Error: unknown command {cmd!r} for helm (this test helm knows version and template)")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except helm.HelmError as e:
        sys.stderr.write(f"Error: {e}\n")
        sys.exit(1)
