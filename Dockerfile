# The qlara-sidecar image used by compose.yaml: one image, one role per container. It installs
# the runtime dependencies alone (requirements-runtime.lock: no test or lint tool).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements-runtime.lock ./
# Then the dependencies' own test suites and pydeck's notebook extension go: nothing imports
# them (84 MiB of 632: bench/image_layers.py measures the layer as built here).
RUN pip install --no-cache-dir -r requirements-runtime.lock \
    && find /usr/local/lib/python3.11/site-packages -depth -type d \
        \( -name tests -o -name test \) -exec rm -rf {} + \
    && rm -rf /usr/local/share/jupyter
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
