"""Rucio as ctaoflow's file catalog, through rucio-clients.

LFN convention: a DID's name is the whole LFN, and its scope is the LFN's second path
component when the LFN reads ``/ctao/<scope>/...`` (otherwise the catalog's default
scope). ``/ctao/ctao/prod5/dl1/run1.h5`` is ``ctao:/ctao/ctao/prod5/dl1/run1.h5``, so
an LFN round-trips without any table. Storage paths follow the RSE's own lfn2pfn
algorithm, computed client-side as Rucio's upload client does.

Queries: metadata conditions become Rucio DID filters (``key``, ``key.ne``, ``.gt`` ...);
``in`` becomes an OR of filter groups, ``nin`` one ``.ne`` plus a check of its other
values on the fetched metadata. Rucio's DID columns (``run_number``, ``datatype`` ...)
cannot share a filter with custom keys, so a mixed query filters the custom keys
server-side and checks the column ones on each page. As in SQL, ``!=`` and ``nin``
only match files that carry the key. Results stream page by page (``page_size``):
names from a streamed ``list_dids``, then per page two ``get_metadata_bulk`` (the DID
columns, and the custom keys of ``metadata_plugin``) and one ``list_replicas``, run
concurrently; collections that custom-key searches return are dropped.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import itertools
import logging
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlparse

from ctaoflow.catalog.base import Catalog, CatalogError, CatalogFile, OutputFile
from ctaoflow.spec.query import Condition, Query

# Rucio DID columns a user sets as metadata; filters on them cannot mix with custom keys.
COLUMN_KEYS = frozenset({
    "campaign", "datatype", "events", "guid", "lumiblocknr", "panda_id", "phys_group",
    "project", "prod_step", "provenance", "run_number", "stream_name", "task_id", "version",
})
INTEGER_COLUMNS = frozenset({"events", "lumiblocknr", "panda_id", "run_number", "task_id"})
# DID attributes and filter words Rucio reserves (the other DID columns): not metadata keys.
RESERVED_KEYS = frozenset({
    "access_cnt", "accessed_at", "account", "adler32", "availability", "bytes", "closed_at",
    "complete", "constituent", "created_after", "created_at", "created_before", "deleted_at",
    "did_type", "eol_at", "expired_at", "hidden", "is_archive", "is_new", "is_open", "length",
    "lifetime", "md5", "monotonic", "name", "obsolete", "purge_replicas", "scope", "suppressed",
    "transient", "type", "updated_at",
})
SUFFIX = {"!=": ".ne", ">": ".gt", ">=": ".gte", "<": ".lt", "<=": ".lte"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}|^\w{3}, \d{2} \w{3} \d{4} ")
MAX_FILTER_GROUPS = 64  # 'in' lists multiply filter groups; all travel in one URL


def _split_lfn(lfn: str, default_scope: str) -> tuple[str, str]:
    """(scope, name) of an LFN: ``/ctao/<scope>/...`` gives ``<scope>``; name is the LFN."""
    parts = lfn.split("/")
    scope = parts[2] if len(parts) > 3 and parts[0] == "" and parts[1] == "ctao" and parts[2] else default_scope
    return scope, lfn


def unsupported(query: Query) -> list[str]:
    """One line per condition of ``query`` that Rucio cannot express faithfully."""
    problems = []
    for c in query.conditions:
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        if "." in c.key:
            problems.append(f"{c.key}: Rucio refuses metadata keys containing '.'")
        elif c.key in RESERVED_KEYS:
            problems.append(f"{c.key}: reserved by Rucio (a DID attribute, not metadata)")
        elif c.key in INTEGER_COLUMNS and not all(_is_int(v) for v in values):
            problems.append(f"{c.key}: an integer column in Rucio; {c.value!r} is not an integer")
        elif c.key in COLUMN_KEYS - INTEGER_COLUMNS and not all(isinstance(v, str) for v in values):
            problems.append(f"{c.key}: a text column in Rucio; write {c.value!r} as a string")
        if any(isinstance(v, str) and "*" in v for v in values):
            problems.append(f"{c.key}: '*' in {c.value!r} would be a Rucio wildcard")
        if any(isinstance(v, str) and _recast(v) for v in values):
            problems.append(f"{c.key}: Rucio would compare {c.value!r} as a number, boolean or date")
        if c.op in (">", ">=", "<", "<=") and isinstance(c.value, bool):
            problems.append(f"{c.key}: Rucio cannot compare booleans with '{c.op}'")
    groups = len(_plan(query).filters)
    if groups > MAX_FILTER_GROUPS:
        problems.append(f"'in' lists expand to {groups} Rucio filter groups (limit "
                        f"{MAX_FILTER_GROUPS}); shorten them")
    return problems


def _recast(text: str) -> bool:
    """Whether Rucio's filter engine turns this string into another type before comparing."""
    if DATE.match(text) or text.lower() in ("true", "false"):
        return True
    try:
        return not isinstance(ast.literal_eval(text), str) and not any(op in text for op in "+-*/")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Plan:
    """A query as Rucio filters (an OR of AND groups) plus conditions checked on each page."""

    filters: list[dict[str, Any]]
    residual: tuple[Condition, ...]


def _plan(query: Query) -> _Plan:
    custom = [c for c in query.conditions if c.key not in COLUMN_KEYS]
    column = [c for c in query.conditions if c.key in COLUMN_KEYS]
    server, residual = (custom, column) if custom else (column, [])
    groups: list[dict[str, Any]] = [{}]
    for c in server:
        if c.op == "in" and c.key not in groups[0]:
            groups = [{**g, c.key: v} for g in groups for v in c.value]
            continue
        if c.op == "nin":
            key, value = c.key + ".ne", c.value[0]
        else:
            key, value = (c.key if c.op in ("=", "in") else c.key + SUFFIX[c.op]), c.value
        if c.op in ("in", "nin") or key in groups[0]:
            residual.append(c)  # an 'in' on a fixed key, a 2nd '.ne', the other 'nin' values
        if c.op != "in" and key not in groups[0]:
            for group in groups:
                group[key] = value
    return _Plan(groups, tuple(residual))


def _matches(conditions: Iterable[Condition], metadata: dict[str, Any]) -> bool:
    """Rucio semantics: a condition only matches files that carry its key."""
    return all(c.key in metadata and c.matches(metadata) for c in conditions)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _checksums(path: str) -> tuple[int, str, str]:
    """Size, adler32 and md5 of a file, in one pass."""
    adler, md5, size = 1, hashlib.md5(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            adler = zlib.adler32(chunk, adler)
            md5.update(chunk)
            size += len(chunk)
    return size, f"{adler & 0xFFFFFFFF:08x}", md5.hexdigest()


def _place(source: str, target: str) -> None:
    """Put ``source`` at ``target`` atomically: a hard link when possible, else a copy."""
    if os.path.exists(target) and os.path.samefile(source, target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f"{target}.part-{os.getpid()}"
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)


class RucioCatalog(Catalog):
    """A Rucio server as the catalog; every call is bulk, errors are one-line CatalogErrors."""

    def __init__(self, host: str, *, auth_host: str | None = None, account: str = "root",
                 auth_type: str = "userpass", username: str | None = None,
                 password: str | None = None, token: str | None = None, scope: str = "ctao",
                 ca_cert: str | None = None, rule_expression: str | None = None,
                 prefer: Sequence[str] = (), page_size: int = 1000, timeout: int = 600,
                 metadata_plugin: str = "JSON", name: str = "rucio") -> None:
        """Connect and authenticate; ``name`` (the connection id) prefixes every error.

        ``auth_type`` is ``userpass`` (username, password) or ``oidc``/``token`` (token).
        ``rule_expression`` places dataset rules (default: the registration storage);
        ``prefer`` orders RSEs for ``local_paths``; ``metadata_plugin`` is the server's
        plugin of custom metadata (Rucio's default: ``JSON``).
        """
        self.name, self.host, self.scope = name, host, scope
        self.rule_expression, self.prefer, self.page_size = rule_expression, tuple(prefer), page_size
        self.metadata_plugin = metadata_plugin
        self._secrets = tuple(s for s in (password, token) if s)
        self._token_dir = tempfile.TemporaryDirectory(prefix="ctaoflow-rucio-")
        kind = "oidc" if auth_type in ("oidc", "token") else auth_type
        if kind == "oidc":
            if not token:
                raise self._error(f"auth_type {auth_type} needs a token")
            with open(os.path.join(self._token_dir.name, "token"), "w") as handle:
                handle.write(token)
        self._config = _write_client_config(self._token_dir.name, host=host, auth_host=auth_host or host,
                                            account=account, auth_type=kind, ca_cert=ca_cert)
        with self._errors("authentication"), _using_config(self._config):
            self.client = _client(self._token_dir.name, rucio_host=host, auth_host=auth_host or host,
                                  account=account, ca_cert=ca_cert, auth_type=kind, timeout=timeout,
                                  creds={"username": username, "password": password},
                                  logger=_DebugOnly(logging.getLogger(__name__), {}))

    # ---------------------------------------------------------------- errors
    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn any client failure into a one-line CatalogError naming the connection."""
        try:
            yield
        except CatalogError:
            raise
        except Exception as exc:  # noqa: BLE001 - rucio-clients raises RucioException, requests and OS errors
            raise self._error(f"{action} failed: {self._reason(exc)}") from None

    def _error(self, message: str) -> CatalogError:
        return CatalogError(f"Rucio connection '{self.name}' ({self.host}): {message}")

    def _reason(self, exc: Exception) -> str:
        if _is_connection_error(exc):
            return "server unreachable"
        text = " ".join(str(exc).replace("Details:", "").split()) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:300]

    # ---------------------------------------------------------------- query
    def query(self, query: Query) -> Iterator[CatalogFile]:
        """Stream the files matching ``query``, ``page_size`` at a time."""
        if problems := unsupported(query):
            raise self._error(f"cannot run query: {problems[0]}")
        plan = _plan(query)
        with self._errors(f"query {query}"):
            yield from self._pages(self._stream_names(plan.filters), plan.residual)

    def names(self, query: Query, since: dt.datetime | None = None) -> Iterator[str]:
        """Names only (one streamed ``list_dids``); with ``since``, only DIDs created after it
        (Rucio's ``created_after``) when the query filters DID columns only: Rucio cannot
        mix it with custom keys, so those list every match."""
        if problems := unsupported(query):
            raise self._error(f"cannot run query: {problems[0]}")
        filters = _plan(query).filters
        if since is not None and all(c.key in COLUMN_KEYS for c in query.conditions):
            after = since.strftime("%Y-%m-%dT%H:%M:%S")
            filters = [{**group, "created_after": after} for group in filters]
        with self._errors(f"query {query}"):
            yield from self._stream_names(filters)

    def files(self, query: Query, lfns: Sequence[str]) -> Iterator[CatalogFile]:
        """Metadata and replicas of ``lfns`` (names of this catalog's scope), page by page."""
        with self._errors(f"query {query}"):
            yield from self._pages(lfns, _plan(query).residual)

    def storages(self, lfns: Sequence[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        with self._errors("list_replicas"):
            for page in _batches(lfns, self.page_size):
                found.update(self._storages(page))
        return found

    def _stream_names(self, filters: list[dict[str, Any]]) -> Iterator[str]:
        """``list_dids`` read as a stream (rucio-clients buffers the whole body otherwise)."""
        from rucio.common.constants import HTTPMethod
        from rucio.common.utils import build_url

        url = build_url(self.client.host, path=f"dids/{quote_plus(self.scope)}/dids/search",
                        params={"type": "file", "filters": filters, "long": False})
        response = self.client._send_request(url, method=HTTPMethod.GET, stream=True)
        if response.status_code != 200:
            exc_cls, message = self.client._get_exception(headers=response.headers, status_code=response.status_code,
                                                          data=response.content)
            raise exc_cls(message)
        with response:
            yield from self.client._load_json_data(response)

    def _pages(self, names: Iterable[str], residual: tuple[Condition, ...]) -> Iterator[CatalogFile]:
        """The files among ``names`` that pass the residual conditions, with their storages.

        Per page, the DID columns (one query per 50 DIDs on the server) and the custom
        metadata (one per DID; ``plugin='ALL'`` would add a second) at once, and the
        replicas of the page's files as soon as the columns tell files from collections;
        the next page's calls start while this page is yielded.
        """
        with ThreadPoolExecutor(3, "rucio-page") as pool:
            previous = None
            for page in _batches(names, self.page_size):
                dids = [{"scope": self.scope, "name": n} for n in page]
                columns = pool.submit(self._bulk_metadata, dids, "DID_COLUMN")
                current = (page, columns, pool.submit(self._bulk_metadata, dids, self.metadata_plugin),
                           pool.submit(lambda c=columns: self._storages(_files(c.result()))))
                if previous:
                    yield from _page_files(*previous, residual)
                previous = current
            if previous:
                yield from _page_files(*previous, residual)

    def _bulk_metadata(self, dids: list[dict[str, str]], plugin: str) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in self.client.get_metadata_bulk(dids, plugin=plugin)}

    def _storages(self, names: list[str]) -> dict[str, tuple[str, ...]]:
        if not names:
            return {}
        replicas = self.client.list_replicas([{"scope": self.scope, "name": n} for n in names], sort="random")
        return {r["name"]: tuple(sorted(rse for rse, state in r.get("states", {}).items() if state == "AVAILABLE"))
                for r in replicas}

    # ---------------------------------------------------------------- replicas
    def local_paths(self, lfns: Sequence[str]) -> dict[str, str]:
        """Local paths of the LFNs' file-protocol replicas (``prefer`` first); unknown LFNs are left out."""
        paths: dict[str, str] = {}
        with self._errors("list_replicas"):
            for batch in _batches(lfns, self.page_size):
                dids = [self._did(lfn) for lfn in batch]
                for replica in self.client.list_replicas(dids, schemes=["file"], sort="random"):
                    if replica["rses"]:
                        rse = min(replica["rses"], key=self._rank)
                        paths[replica["name"]] = urlparse(replica["rses"][rse][0]).path
        return paths

    def _rank(self, rse: str) -> tuple[int, str]:
        return (self.prefer.index(rse) if rse in self.prefer else len(self.prefer), rse)

    # ---------------------------------------------------------------- registration
    def register(self, outputs: Sequence[OutputFile], storage: str, dataset: str,
                 rule_expression: str | None = None) -> int:
        """Place ``outputs`` on ``storage``, register them with metadata, attach them to
        ``dataset`` (created if missing, with one replication rule on ``rule_expression``,
        else the catalog's, else ``storage``). Known LFNs of the same size are skipped."""
        if not outputs:
            return 0
        with self._errors(f"registration on {storage}"):
            settings = self.client.get_protocols(storage, operation="write", scheme="file")
            if not settings.get("protocols"):
                raise self._error(f"storage {storage} has no file protocol")
            parent = self._ensure_dataset(dataset, rule_expression or self.rule_expression or storage)
            new = 0
            for batch in _batches(outputs, self.page_size):
                self._check_metadata(o.metadata for o in batch)
                sizes = {o.lfn: os.path.getsize(o.path) for o in batch}
                fresh = self._fresh(sizes)
                entries = self._place_all([o for o in batch if o.lfn in fresh], storage, settings)
                new += self._add(entries, storage, parent, [o.lfn for o in batch])
        return new

    def add_files(self, files: Iterable[CatalogFile], storage: str, dataset: str | None = None) -> int:
        """Register catalog entries for files already on ``storage`` (no data moved), in bulk.

        Known LFNs of the same size are skipped; returns how many were new."""
        with self._errors(f"add_files on {storage}"):
            parent = self._ensure_dataset(dataset, self.rule_expression or storage) if dataset else None
            new = 0
            for batch in _batches(files, self.page_size):
                self._check_metadata(f.metadata for f in batch)
                fresh = self._fresh({f.lfn: f.size for f in batch})
                entries = [self._entry(f.lfn, f.size, f.metadata) for f in batch if f.lfn in fresh]
                new += self._add(entries, storage, parent, [f.lfn for f in batch])
        return new

    def _check_metadata(self, metadatas: Iterable[dict[str, Any]]) -> None:
        bad = {k for meta in metadatas for k in meta if "." in k or k in RESERVED_KEYS}
        if bad:
            raise self._error(f"metadata keys Rucio refuses: {', '.join(sorted(bad))}")

    def _fresh(self, sizes: dict[str, int]) -> set[str]:
        """The LFNs not yet registered; a known LFN with another size is an error."""
        known = {m["name"]: m["bytes"] for m in
                 self.client.get_metadata_bulk([self._did(lfn) for lfn in sizes], plugin="DID_COLUMN")}
        clash = [lfn for lfn, size in known.items() if lfn in sizes and size != sizes[lfn]]
        if clash:
            raise self._error(f"{clash[0]} is already registered with {known[clash[0]]} bytes, "
                              f"not {sizes[clash[0]]} ({len(clash)} such file(s))")
        return set(sizes) - set(known)

    def _place_all(self, outputs: list[OutputFile], storage: str, settings: dict[str, Any]) -> list[dict[str, Any]]:
        from rucio.rse import rsemanager

        dids = [self._did(o.lfn) for o in outputs]
        if not dids:
            return []
        with _using_config(self._config):  # rsemanager reads the (client-only) configuration
            pfns = rsemanager.lfns2pfns(settings, dids, operation="write", scheme="file")
        entries = []
        for output, did in zip(outputs, dids):
            size, adler32, md5 = _checksums(output.path)
            _place(output.path, urlparse(pfns[f"{did['scope']}:{did['name']}"]).path)
            entries.append(self._entry(output.lfn, size, output.metadata, adler32=adler32, md5=md5))
        return entries

    def _entry(self, lfn: str, size: int, metadata: dict[str, Any], **checksums: str) -> dict[str, Any]:
        return {**self._did(lfn), "bytes": size, **checksums, "meta": dict(metadata)}

    def _add(self, entries: list[dict[str, Any]], storage: str, parent: dict[str, str] | None,
             lfns: list[str]) -> int:
        """add_replicas for the new entries, then attach the whole batch (duplicates ignored)."""
        if entries:
            self.client.add_replicas(rse=storage, files=entries)
        if parent:
            self.client.attach_dids_to_dids([{**parent, "dids": [self._did(lfn) for lfn in lfns]}],
                                            ignore_duplicate=True)
        return len(entries)

    def _ensure_dataset(self, dataset: str, rse_expression: str) -> dict[str, str]:
        """The dataset's DID, creating it and its replication rule when missing."""
        from rucio.common.exception import DataIdentifierAlreadyExists, DuplicateRule

        did = self._did(dataset)
        try:
            self.client.add_dataset(did["scope"], did["name"])
        except DataIdentifierAlreadyExists:
            pass
        rules = self.client.list_did_rules(did["scope"], did["name"])
        if not any(r["rse_expression"] == rse_expression for r in rules):
            try:
                self.client.add_replication_rule([did], 1, rse_expression)
            except DuplicateRule:
                pass
        return did

    def dataset_closed(self, dataset: str) -> bool:
        from rucio.common.exception import DataIdentifierNotFound

        did = self._did(dataset)
        with self._errors("get_did"):
            try:
                return not self.client.get_did(did["scope"], did["name"])["open"]
            except DataIdentifierNotFound:
                return False

    def _did(self, lfn: str) -> dict[str, str]:
        scope, name = _split_lfn(lfn, self.scope)
        return {"scope": scope, "name": name}

    def close(self) -> None:
        """Drop the session and the private token directory."""
        self.client.session.close()
        self._token_dir.cleanup()


def _files(columns: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, row in columns.items() if row.get("did_type") == "FILE"]


def _page_files(names: list[str], columns: Future, custom: Future, storages: Future,
                residual: tuple[Condition, ...]) -> Iterator[CatalogFile]:
    """A page's files (not datasets) that pass the residual conditions, in ``names`` order."""
    columns, custom, storages = columns.result(), custom.result(), storages.result()
    for name in names:
        row = columns.get(name)
        if row is None or row.get("did_type") != "FILE":
            continue
        meta = _user_metadata({**row, **custom.get(name, {})})
        if _matches(residual, meta):
            yield CatalogFile(name, int(row["bytes"] or 0), meta, storages.get(name, ()))


def _user_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The user's keys of a DID's columns and custom metadata: custom keys and set columns."""
    return {k: v for k, v in meta.items()
            if k not in RESERVED_KEYS and (k not in COLUMN_KEYS or v is not None)}


def _is_connection_error(exc: Exception) -> bool:
    import requests

    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError))


class _DebugOnly(logging.LoggerAdapter):
    """rucio-clients' log records, all at DEBUG: a failure reaches the caller as one CatalogError."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


def _write_client_config(directory: str, **settings: str | None) -> str:
    """A private rucio.cfg with ONLY a [client] section (a [database] one means server mode); no secrets."""
    path = os.path.join(directory, "rucio.cfg")
    lines = ["[client]"] + [f"{key} = {value}" for key, value in settings.items() if value]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines + ["request_retries = 3", ""]))
    return path


@contextmanager
def _using_config(path: str) -> Iterator[None]:
    """Point rucio-clients' process-wide configuration at ``path`` for the duration."""
    from rucio.common import config

    previous = os.environ.get("RUCIO_CONFIG")
    os.environ["RUCIO_CONFIG"] = path
    config.clean_cached_config()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["RUCIO_CONFIG"]
        else:
            os.environ["RUCIO_CONFIG"] = previous
        config.clean_cached_config()


def _client(token_dir: str, **kwargs: Any) -> Any:
    """A rucio-clients ``Client`` whose auth token lives in ``token_dir``.

    rucio-clients otherwise shares one token file per account under /tmp, so a catalog
    could ride on another connection's token (and never check its own password).
    """
    from rucio.client import Client

    class _Client(Client):
        def _get_auth_tokens(self) -> tuple[None, str, str, str]:
            return None, os.path.join(token_dir, "token_expiry"), os.path.join(token_dir, "token"), token_dir

    argv0 = sys.argv[0] if sys.argv else None
    try:
        return _Client(**kwargs)
    finally:
        if argv0 is not None:
            sys.argv[0] = argv0  # rucio-clients truncates it
