"""Validates a CycloneDX 1.6 JSON document against the official schema with
cyclonedx-python-lib (the CycloneDX project's own library, independent of ferry).

Usage: python cyclonedx_validate.py FILE   (exit 0 when valid, else the errors)"""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
if errors:
    for e in errors:
        print(e, file=sys.stderr)
    sys.exit(1)
print("valid CycloneDX 1.6")
