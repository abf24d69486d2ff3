#!/usr/bin/env python3
"""Checks the recorded-session fixtures and lists the distinct behaviours they cover.

Stdlib only. Run from anywhere: `python3 tests/recordings/check.py`. Exits non-zero when a
fixture lacks provenance, names a path outside its SDK's recordings, or carries a request
body whose SHA-256 differs from the `x-ms-content-sha256` the SDK recorded for it.
"""
import base64
import hashlib
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
SDKS = {
    "dotnet": "sdk/communication/Azure.Communication.Identity/tests/SessionRecords/",
    "java": "sdk/communication/azure-communication-identity/src/test/resources/session-records/",
    "python": "sdk/communication/azure-communication-identity/tests/recordings/",
    "js": "sdk/communication/communication-identity/recordings/",
}


def behaviour(entry):
    req, resp = entry["request"], entry["response"]
    version = re.search(r"api-version=([^&]+)", req["path"])
    body = resp["body"]
    if isinstance(body, dict) and "error" in body:
        e = body["error"]
        outcome = f'{e["code"]} "{e["message"]}"' + (f' target={e["target"]}' if "target" in e else "")
    elif isinstance(body, dict):
        outcome = "{" + ",".join(sorted(body)) + "}"
    else:
        outcome = "(no body)"
    return (entry["operation"], version.group(1) if version else "-", resp["status"], outcome)


def main():
    problems = []
    seen = {}
    for sdk, base in SDKS.items():
        doc = json.loads((HERE / f"{sdk}.json").read_text())
        names = set()
        for fx in doc["fixtures"]:
            where = f'{sdk}/{fx["name"]}'
            if fx["name"] in names:
                problems.append(f"{where}: duplicate name")
            names.add(fx["name"])
            src = fx.get("source", {})
            if not src.get("path", "").startswith(base):
                problems.append(f"{where}: source path outside {base}")
            if not re.fullmatch(r"[0-9a-f]{40}", src.get("commit", "")):
                problems.append(f"{where}: no 40-hex commit")
            for i, entry in enumerate(fx["entries"]):
                body = entry["request"]["body"]
                want = entry["request"].get("recorded_content_sha256")
                if want and "${" not in (body or ""):
                    got = base64.b64encode(hashlib.sha256((body or "").encode()).digest()).decode()
                    if got != want:
                        problems.append(f"{where}#{i}: body hash {got} != recorded {want}")
                seen.setdefault(behaviour(entry), []).append(f"{where}#{i}")
    for b in sorted(seen, key=lambda b: (b[0], b[1], b[2], b[3])):
        print(f"{b[0]:20} {b[1]:20} {b[2]}  {b[3]}  ({len(seen[b])}x)")
    print(f"{len(seen)} distinct behaviours")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
