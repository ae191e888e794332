"""What an interpreter reports about itself: run *by the job's interpreter* as `python -c`
with this file's source (so stdlib only, and no syntax newer than Python 3.6: a job's venv may
be old), and imported by ctui for its own `sys.path` (`distributions`).

Distributions are read from the `*.dist-info` / `*.egg-info` folder names on the path (5 ms
for 300 packages, where importlib.metadata takes ~300 ms); only a folder whose name does not
carry the version has its METADATA read.
"""

import json
import os
import platform
import re
import sys

_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name):
    """PEP 503 normalised name: `Zope.Interface` → `zope-interface`."""
    return _NORMALIZE.sub("-", name).lower()


def _version_of(folder):
    try:
        with open(os.path.join(folder, "METADATA"), "rb") as fh:
            for raw in fh:
                line = raw.decode("utf-8", "replace")
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return "unknown"


def distributions(path):
    """Every distribution on `path` → version; the first one on the path wins, like imports.
    An empty entry (the job's own folder) is skipped: its files are the code section's."""
    found = {}
    for entry in path:
        if not entry:
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, sep, version = folder[: -len(".dist-info")].partition("-")
            elif folder.endswith(".egg-info"):
                name, sep, version = folder[: -len(".egg-info")].partition("-")
                version = version.split("-py")[0]  # egg names carry `-py3.11`
            else:
                continue
            key = canonical_name(name)
            if key in found:
                continue
            if not sep or not version:
                version = _version_of(os.path.join(entry, folder))
            found[key] = version
    return dict(sorted(found.items()))


def report():
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "path": [p for p in sys.path if p],
        "packages": distributions(sys.path),
    }


if __name__ == "__main__":
    print(json.dumps(report()))
