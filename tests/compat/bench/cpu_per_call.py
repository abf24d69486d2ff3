"""CPU time per create_user + get_token(["chat"]) pair of the official Python SDK.

Same protocol as crates/acs_identity/examples/cpu_per_call.rs: --warmup pairs, then
--pairs sequential pairs with the sync client; prints one JSON line with the CPU the
process used during the measured loop only (resource.getrusage(RUSAGE_SELF), user +
system, so imports and the warm-up are excluded):

    {"client":"python","pairs":N,"cpu_us_per_pair":…,"user_us":…,"sys_us":…,"wall_s":…}

Run by `cargo xtask client-bench`, or by hand with the compat virtualenv:

    target/compat-venv/bin/python tests/compat/bench/cpu_per_call.py \
        --endpoint http://127.0.0.1:8080 --connection-string "endpoint=…;accesskey=…"

Over plain HTTP the endpoint goes to the constructor with an AzureKeyCredential: the
SDK's connection-string parser would switch it to https.
"""

import argparse
import json
import os
import resource
import sys
import time

from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.credentials import AzureKeyCredential


def access_key(connection_string):
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accesskey":
            return value.strip()
    sys.exit("the connection string has no accesskey")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", help="overrides the connection string's endpoint")
    parser.add_argument(
        "--connection-string",
        default=os.environ.get("COMMUNICATION_SERVICES_CONNECTION_STRING"),
    )
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    if not args.connection_string:
        sys.exit("pass --connection-string or set COMMUNICATION_SERVICES_CONNECTION_STRING")

    if args.endpoint:
        # No trailing slash: this constructor would sign it into the host (PERF.md §4).
        client = CommunicationIdentityClient(
            args.endpoint.rstrip("/"), AzureKeyCredential(access_key(args.connection_string))
        )
    else:
        client = CommunicationIdentityClient.from_connection_string(args.connection_string)

    scopes = [CommunicationTokenScope.CHAT]

    def pair():
        user = client.create_user()
        token = client.get_token(user, scopes)
        if not token.token:
            sys.exit("the service returned an empty token")

    for _ in range(args.warmup):
        pair()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(args.pairs):
        pair()
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    user_us = (r1.ru_utime - r0.ru_utime) * 1e6
    sys_us = (r1.ru_stime - r0.ru_stime) * 1e6
    print(
        json.dumps(
            {
                "client": "python",
                "pairs": args.pairs,
                "cpu_us_per_pair": round((user_us + sys_us) / args.pairs, 1),
                "user_us": round(user_us),
                "sys_us": round(sys_us),
                "wall_s": round(t1 - t0, 3),
            },
            separators=(",", ":"),
        )
    )


if __name__ == "__main__":
    main()
