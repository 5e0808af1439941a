"""The engine: runs productions against catalogs, batch systems and the ledger.

By stage, one module each: ``intake`` (catalog -> ledger, MC tasks, the flush
decision), ``submission`` (job planning, side inputs, site choice, sending),
``collection`` (job results, failure classes, retries, site pausing, moving queued
work) and ``completion`` (finalize, production completion, summaries). They use the
``ledger`` (SQLAlchemy tables), the ``grouping`` plugins, the job templates (``jobs``)
and the failure rules (``failures``); each change also leaves a monitoring row in the
``outbox`` when monitoring is on (``ctaoflow.monitoring`` sends them). ``Engine``
(``facade``) is what the Airflow layer calls.

May import: ``ctaoflow.spec``, ``ctaoflow.catalog``, ``ctaoflow.backends``,
``ctaoflow.settings``; never Airflow, never ``ctaoflow.ops``.
"""

from ctaoflow.engine.completion import summarize
from ctaoflow.engine.facade import Engine
from ctaoflow.engine.submission import ChunkResult

__all__ = ["ChunkResult", "Engine", "summarize"]
