"""PostgreSQL for the tests: a server from ATELIER_TEST_POSTGRES_URL, or a throwaway local one.

`postgres_server` (session) yields a server URL; `fresh_postgres_url(server)` makes an empty
database on it for one test. Without a server and without PostgreSQL's binaries the tests
that need it are skipped, unless ATELIER_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ENV_URL = "ATELIER_TEST_POSTGRES_URL"
ENV_REQUIRE = "ATELIER_REQUIRE_POSTGRES"


def _binaries() -> str | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return os.path.dirname(found[-1]) if found else None


def _version(path: str) -> float:
    return float(path.split("/")[4])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"PostgreSQL is required ({ENV_REQUIRE}=1) but {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """`postgresql+asyncpg://user@host:port` of a running server (no database part)."""
    if url := os.environ.get(ENV_URL):
        yield url
        return
    bin_dir = _binaries()
    if bin_dir is None:
        _unavailable(f"{ENV_URL} is unset and PostgreSQL is not installed")
    data = tempfile.mkdtemp(prefix="atelier-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            _as_postgres(
                [f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            **run,
        )
        subprocess.run(
            _as_postgres(
                [f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-l", f"{data}/log", "-w", "start"]
            ),
            **run,
        )
    except (OSError, subprocess.SubprocessError) as error:
        shutil.rmtree(data, ignore_errors=True)
        detail = getattr(error, "stderr", b"") or b""
        _unavailable(f"a local server did not start: {error} {detail.decode(errors='replace')}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "stop"]), **run)
        shutil.rmtree(data, ignore_errors=True)


async def fresh_postgres_url(server: str) -> str:
    """Create an empty database on `server` and return its SQLAlchemy URL."""
    url = make_url(server)
    name = f"atelier_test_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)
