# syntax=docker/dockerfile:1
# Build: the locked runtime dependencies only (no dev group) into a virtualenv.
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Run: the virtualenv and the source, as an unprivileged user.
FROM python:3.11-slim-bookworm AS run
RUN groupadd --system jizhou && useradd --system --gid jizhou --home-dir /srv --no-create-home jizhou
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY app ./app
COPY alembic ./alembic
COPY alembic.ini ./
COPY seeds ./seeds
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000 JIZHOU_ENVIRONMENT=production
USER jizhou
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
# Migrations and seeds are run as one-off jobs: `python -m app db upgrade` and `python -m app seed`.
CMD ["python", "-m", "app", "serve"]
