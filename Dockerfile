# The qlara-sidecar image used by compose.yaml: one image, one role per container. It installs
# the runtime dependencies alone (requirements-runtime.lock: no test or lint tool).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY qlara ./qlara
COPY qlara_api ./qlara_api
COPY ledger ./ledger
COPY metrics ./metrics
COPY alerts ./alerts
COPY receiver ./receiver
COPY workers ./workers
COPY dashboard ./dashboard
COPY simulator ./simulator
COPY sidecar ./sidecar
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 qlara \
    && mkdir -p /var/lib/qlara && chown qlara /var/lib/qlara
USER qlara
ENV QLARA_SIDECAR_DATA_DIR=/var/lib/qlara
ENTRYPOINT ["qlara-sidecar"]
CMD ["up"]
