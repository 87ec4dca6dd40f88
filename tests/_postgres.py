"""A throwaway PostgreSQL server for the test session.

``start_postgres(base_dir)`` runs ``initdb`` and ``pg_ctl start`` with the binaries it finds (on
PATH, via ``pg_config --bindir``, or in Debian's ``/usr/lib/postgresql/<version>/bin``), listening
on 127.0.0.1 only, on a free port, with its Unix socket in the server's own folder. Authentication
is ``trust`` (the server is reachable only from this machine, for the duration of the tests).

PostgreSQL refuses to run as root; when the tests run as root, the server runs as the ``postgres``
user that Debian's ``postgresql`` package creates, in a folder that user owns.

``VLMRM_TEST_POSTGRES_URL`` (e.g. ``postgresql://user:pw@host/postgres``) points the tests at an
existing server instead; they then create and drop their databases there.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

SUPERUSER = "postgres"
INSTALL_HINT = "install the Debian package postgresql (apt-get install -y postgresql)"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and what to install."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_pg_binaries() -> tuple[Path, Path]:
    """Locate ``initdb`` and ``pg_ctl``.

    Returns:
        Their paths (from the same installation where possible).

    Raises:
        PostgresUnavailable: neither on PATH, nor via pg_config, nor in the Debian layout.
    """
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates.extend(Path(p) for p in debian)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir / "initdb", bindir / "pg_ctl"
    # pg_ctl alone on PATH next to an initdb elsewhere (unusual, but cheap to allow).
    pg_ctl = shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    raise PostgresUnavailable(
        "no initdb/pg_ctl found on PATH, via pg_config --bindir or in "
        f"/usr/lib/postgresql/*/bin; {INSTALL_HINT}"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server (ours or an external one) that tests create databases on."""

    admin_url: str
    """URL of the maintenance database, connected to with autocommit for CREATE DATABASE."""
    data_dir: Path | None = None
    pg_ctl: Path | None = None
    run_as: str | None = None
    cleanup_dir: Path | None = None
    """A folder we created outside pytest's tmp dir (when running as root), removed at stop."""
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of a database on this server."""
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=database)
        return url.render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection:
        url = make_url(self.admin_url)
        return psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database created by :meth:`create_database` (closing leftover sessions)."""
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if name in self.databases:
            self.databases.remove(name)

    def stop(self) -> None:
        """Stop our server and remove its folder; for an external server, drop leftovers."""
        if self.pg_ctl is None or self.data_dir is None:
            for name in list(self.databases):
                with contextlib.suppress(psycopg.Error):
                    self.drop_database(name)
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run(
                [str(self.pg_ctl), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                self.run_as,
                cwd=self.data_dir.parent,
            )
        if self.cleanup_dir is not None:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)


def _as_user(cmd: Sequence[str], user: str | None) -> list[str]:
    if user is None:
        return list(cmd)
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *cmd]
    if shutil.which("su"):
        return ["su", user, "-s", "/bin/sh", "-c", shlex.join(cmd)]
    raise PostgresUnavailable("running as root but neither runuser nor su is available")


def _run(
    cmd: Sequence[str], user: str | None, *, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    return subprocess.run(
        _as_user(cmd, user),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


def _prepare_dir(base_dir: Path) -> tuple[Path, str | None, Path | None]:
    """Pick the server folder and the user to run as (root cannot run PostgreSQL)."""
    if os.geteuid() != 0:
        base_dir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to ~107 bytes; pytest's tmp paths can be long.
        if len(str(base_dir)) < 60:
            return base_dir, None, None
        short = Path(tempfile.mkdtemp(prefix="vlmrm-pg-"))
        return short, None, short
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root (PostgreSQL refuses to) and there is no 'postgres' user to run it "
            f"as; {INSTALL_HINT}, which creates that user"
        ) from None
    # pytest's tmp root is private to root (mode 0700), so the postgres user could not reach a
    # folder inside it: use a fresh private folder owned by postgres instead.
    own = Path(tempfile.mkdtemp(prefix="vlmrm-pg-"))
    os.chown(own, account.pw_uid, account.pw_gid)
    return own, SUPERUSER, own


def start_postgres(base_dir: Path) -> PostgresServer:
    """Initialise and start a private PostgreSQL server.

    Args:
        base_dir: an empty folder for the cluster (a pytest tmp dir); when running as root a
            folder owned by the postgres user is created instead.

    Returns:
        The running server; call :meth:`PostgresServer.stop` when done.

    Raises:
        PostgresUnavailable: binaries missing, no user to run as, or the server failed to start.
    """
    initdb, pg_ctl = find_pg_binaries()
    root, user, cleanup = _prepare_dir(base_dir)
    data_dir = root / "data"
    log_file = root / "server.log"
    server = PostgresServer(
        admin_url="", data_dir=data_dir, pg_ctl=pg_ctl, run_as=user, cleanup_dir=cleanup
    )
    try:
        init = _run(
            [
                str(initdb),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            user,
            cwd=root,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(init.stderr or init.stdout)[-800:]}")
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probing and binding
            port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(root))} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            start = _run(
                [
                    str(pg_ctl),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                user,
                cwd=root,
            )
            if start.returncode == 0:
                server.admin_url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
                with server._admin() as conn:
                    conn.execute("SELECT 1")
                return server
            log = log_file.read_text(errors="replace")[-800:] if log_file.exists() else ""
            last_error = f"{start.stderr or start.stdout}\n{log}"
        raise PostgresUnavailable(f"pg_ctl start failed: {last_error[-1200:]}")
    except BaseException:
        server.stop()
        raise
