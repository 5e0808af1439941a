# The ctaoflow Airflow image: Airflow 3.3.2 with the project's pinned requirements
# (the Celery provider among them) and ctaoflow installed, the DAGs, plugins, operators
# and configuration baked in. Used by docker-compose.yaml and by the Helm values in
# deploy/helm/values.yaml. Build: docker build -t ctaoflow-airflow:0.1.0 .
FROM apache/airflow:3.3.2-python3.11

USER root
# the batch systems' clients a site needs go here (e.g. slurm-client for Slurm sites)
USER airflow

COPY --chown=airflow:0 requirements.txt /opt/ctaoflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/ctaoflow/requirements.txt

COPY --chown=airflow:0 pyproject.toml README.md /opt/ctaoflow/
COPY --chown=airflow:0 ctaoflow /opt/ctaoflow/ctaoflow
COPY --chown=airflow:0 operators /opt/ctaoflow/operators
COPY --chown=airflow:0 dags /opt/ctaoflow/dags
COPY --chown=airflow:0 plugins /opt/ctaoflow/plugins
COPY --chown=airflow:0 config /opt/ctaoflow/config
RUN pip install --no-cache-dir --no-deps /opt/ctaoflow

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/ctaoflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/ctaoflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    CTAOFLOW_PRODUCTIONS=/opt/ctaoflow/config/productions \
    CTAOFLOW_SITES=/opt/ctaoflow/config/sites.yaml \
    CTAOFLOW_HOME=/var/lib/ctaoflow
