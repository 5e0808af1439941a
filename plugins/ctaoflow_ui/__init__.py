"""The Productions UI: pages and a JSON API served by the plugin's FastAPI app inside
Airflow's api-server (``app``: routes; ``access``: who may read and act; ``pages``: the
HTML; ``actions``: the operator actions, which call ``ctaoflow.ops.operations``)."""
