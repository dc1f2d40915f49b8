# One image for the API, the workers, the dashboard and Flower; docker-compose.yml
# picks the command. The torch wheel from PyPI bundles the CUDA runtime, so the
# GPU worker needs only the NVIDIA driver and container toolkit on the host.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATELAB_HOME=/var/lib/gatelab

RUN useradd --create-home --uid 10001 gatelab \
    && mkdir -p /var/lib/gatelab/artifacts /var/lib/gatelab/cache \
    && chown -R gatelab:gatelab /var/lib/gatelab

WORKDIR /app

# Dependencies first, so that a code change does not reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir gating_core backend worker dashboard gatelab \
    && pip install . \
    && pip uninstall --yes gatelab

COPY gating_core ./gating_core
COPY backend ./backend
COPY worker ./worker
COPY dashboard ./dashboard
COPY gatelab ./gatelab
COPY examples ./examples
RUN pip install --no-deps .

# The image has no .git folder, so runs record the commit given at build time.
ARG GATELAB_CODE_VERSION=unknown
ENV GATELAB_CODE_VERSION=${GATELAB_CODE_VERSION}

USER gatelab
EXPOSE 8000 8501 5555
CMD ["uvicorn", "--factory", "backend.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
