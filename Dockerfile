# Image for trytond (web under gunicorn), trytond-worker and trytond-cron.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm libpq5 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/prepaid
COPY requirements.txt pyproject.toml README.md ./
COPY addons ./addons
COPY simulators ./simulators
COPY prepaid_demo ./prepaid_demo
RUN pip install --no-cache-dir -r requirements.txt && pip install --no-cache-dir --no-deps -e .

# The sao web client; its index.html loads node_modules/ from its own folder.
RUN mkdir sao && cd sao && npm pack tryton-sao@8.0.11 && tar xzf tryton-sao-8.0.11.tgz \
    && mv package tryton-sao && rm tryton-sao-8.0.11.tgz && cd tryton-sao \
    && npm install --omit=dev --legacy-peer-deps --no-audit --no-fund --ignore-scripts

COPY trytond.conf /etc/trytond.conf
ENV TRYTOND_CONFIG=/etc/trytond.conf \
    TRYTOND_WEB__ROOT=/opt/prepaid/sao/tryton-sao \
    TZ=UTC
USER nobody
EXPOSE 8000
