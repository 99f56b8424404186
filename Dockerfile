# The search service on the documents in sources/, index built at image build time.
# Build: docker build -t qa .      Run: docker run -p 8000:8000 qa
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    QA_CACHE_DIR=/app/.cache \
    QA_SOURCES_DIR=/app/sources \
    QA_INDEX_DIR=/app/index \
    QA_HOST=0.0.0.0 \
    QA_PORT=8000

WORKDIR /app

# The CPU build of torch, pinned, from PyTorch's CPU wheel index: the default index would
# pull several GB of CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY qa ./qa
RUN pip install .

# Convert the bundled model and build the index now, so the container starts serving at once.
COPY sources ./sources
RUN qa model && qa index --quiet

RUN useradd --system --home /app qa && chown -R qa /app
USER qa
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready')"
CMD ["qa", "serve"]
