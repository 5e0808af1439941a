"""Create the scope and the POSIX RSEs the tests use, idempotently (run by start.sh)."""

from __future__ import annotations

import argparse
import os

from rucio.client import Client
from rucio.common.exception import Duplicate, RSEProtocolNotSupported


def has_file_protocol(client: Client, rse: str) -> bool:
    try:
        return any(p["scheme"] == "file" for p in client.get_protocols(rse)["protocols"])
    except RSEProtocolNotSupported:
        return False


def add_rse(client: Client, rse: str, directory: str) -> None:
    """A deterministic RSE whose storage is ``directory``, read and written as local files."""
    os.makedirs(directory, exist_ok=True)
    try:
        client.add_rse(rse, deterministic=True)
    except Duplicate:
        pass
    if not has_file_protocol(client, rse):
        ops = {"read": 1, "write": 1, "delete": 1}
        client.add_protocol(rse, {
            "scheme": "file", "hostname": "localhost", "port": 0, "prefix": directory + "/",
            "impl": "rucio.rse.protocols.posix.Default",
            "domains": {"lan": ops, "wan": {**ops, "third_party_copy_read": 1,
                                            "third_party_copy_write": 1}},
        })
    site = rse.rsplit("-", 1)[0]
    for key, value in {"lfn2pfn_algorithm": "identity", "site": site, "type": "DISK",
                       "ctao_storage": True}.items():
        client.add_rse_attribute(rse, key, value)
    client.set_local_account_limit("root", rse, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--rse-dir", required=True)
    parser.add_argument("rses", nargs="+")
    args = parser.parse_args()
    client = Client()
    if args.scope not in client.list_scopes():
        client.add_scope(account="root", scope=args.scope)
    for rse in args.rses:
        add_rse(client, rse, os.path.join(args.rse_dir, rse))


if __name__ == "__main__":
    main()
