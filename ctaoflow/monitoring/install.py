"""Install ``config/monitoring/``'s index template and ISM policy on an OpenSearch server.

Idempotent: the template is put (replaced); the policy is created, or updated in place
(with its sequence number, as the ISM API asks) when it exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from opensearchpy import NotFoundError, OpenSearch

from ctaoflow import settings

FOLDER = settings.CONFIG_DIR / "monitoring"
TEMPLATES = {"ctaoflow-events": "index-template-events.json"}
POLICIES = {"ctaoflow-events-retention": "ism-policy-events.json"}


def _read(name: str, folder: Path) -> dict:
    return json.loads((folder / name).read_text())


def install(client: OpenSearch, folder: Path = FOLDER) -> list[str]:
    """Put the templates and policies; returns one line per thing done."""
    done = []
    for name, file in TEMPLATES.items():
        client.indices.put_index_template(name=name, body=_read(file, folder))
        done.append(f"index template {name} ({file})")
    for name, file in POLICIES.items():
        body = _read(file, folder)
        try:
            old = client.plugins.index_management.get_policy(policy=name)
        except NotFoundError:
            client.plugins.index_management.put_policy(policy=name, body=body)
            done.append(f"ISM policy {name} created ({file})")
        else:
            client.plugins.index_management.put_policy(
                policy=name, body=body, params={"if_seq_no": old["_seq_no"],
                                                "if_primary_term": old["_primary_term"]})
            done.append(f"ISM policy {name} updated ({file})")
    return done
