# The pipeline's Airflow image: the official image with the tag-compliance wheel (and its package
# data: SQL, policies, pools, IAM documents) installed at build time, and the DAG file.
#   docker compose build        (docker-compose.yml builds it for every Airflow service)
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS wheel
COPY --chown=airflow:0 . /tmp/src
RUN pip wheel --no-deps --no-cache-dir -w /tmp/dist /tmp/src

FROM ${AIRFLOW_IMAGE}
COPY --from=wheel /tmp/dist /tmp/dist
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir "$(ls /tmp/dist/tag_compliance-*.whl)[airflow]" -c /tmp/constraints.txt
COPY dags/tag_compliance.py /opt/airflow/dags/tag_compliance.py
