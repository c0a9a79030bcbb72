"""Shared test settings: the process settings of an experiment process (headless MuJoCo rendering, one torch
thread per pytest-xdist worker), from the one place that decides them."""

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from lattice.experiments.process import configure_process

configure_process()


def session_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder shared by every pytest-xdist worker of this test session (and only of this session), for work that
    is done once and guarded by a lock file: the session's base folder holds one folder per worker."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


def service_missing(message: str) -> NoReturn:
    """A service that tests need (SLURM, ...) is not there: skip with `message`, one line saying why and how to
    enable it, or fail where LATTICE_REQUIRE_SERVICES=1 (CI, .ci/run), so that CI never skips them silently."""
    if os.environ.get("LATTICE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"LATTICE_REQUIRE_SERVICES=1 but {message}", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class SlurmCluster:
    """The SLURM cluster the `slurm` tests submit to: the one node of .ci/slurm.sh and its (default) partition."""

    partition: str
    node: str
    cpus: int


SLURM_HOW = "`make cluster` (as root) installs and starts a one-node SLURM"


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A SLURM controller that answers `sinfo` within seconds with a node in service (idle, or running jobs); else
    the test is skipped (or fails under LATTICE_REQUIRE_SERVICES=1). Tests marked `slurm` get this check without
    asking; ask for the fixture for the partition, node and CPU count."""
    if shutil.which("sinfo") is None:
        service_missing(f"no SLURM here (sinfo not found): {SLURM_HOW}")
    command = ["sinfo", "--noheader", "--Node", "--format=%N|%P|%t|%c"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        service_missing(f"SLURM does not answer (sinfo took over 10 s): {SLURM_HOW}")
    if result.returncode != 0:
        error = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
        service_missing(f"SLURM does not answer (sinfo: {error}): {SLURM_HOW}")
    nodes = [line.split("|") for line in result.stdout.splitlines() if line.count("|") == 3]
    # in service: idle, or running jobs (mixed, allocated); the default partition first
    usable = sorted((n for n in nodes if n[2] in ("idle", "mix", "alloc")), key=lambda n: not n[1].endswith("*"))
    if not usable:
        states = ", ".join(f"{node} {state}" for node, _, state, _ in nodes) or "no nodes"
        service_missing(f"SLURM has no node in service ({states}): {SLURM_HOW}")
    node, partition, _, cpus = usable[0]
    return SlurmCluster(partition=partition.rstrip("*"), node=node, cpus=int(cpus))


@pytest.fixture(autouse=True)
def _slurm_marker(request: pytest.FixtureRequest) -> None:
    """Tests marked `slurm` need the cluster: they get the (once per session) check of `slurm_cluster`."""
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


POSTGRES_HOW = "install Debian's postgresql (`make cluster` as root does)"


def _postgres_programs() -> Path | None:
    """The folder of PostgreSQL's initdb and pg_ctl: Debian's newest /usr/lib/postgresql/<version>/bin, else PATH's."""
    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl") if (p.parent / "initdb").exists()]
    if debian:
        return max(debian, key=lambda bin_dir: int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


def _server_user() -> tuple[list[str], tuple[int, int] | None]:
    """How to run the server: as this user, or, as root (whom postgres refuses), as Debian's `postgres` user (else
    `nobody`) through runuser. Returns the command prefix and the (uid, gid) that must own its folder."""
    import pwd

    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if runuser is not None:
            return [runuser, "-u", name, "--"], (user.pw_uid, user.pw_gid)
    service_missing(
        f"PostgreSQL cannot run as root and there is no runuser with a postgres or nobody user: {POSTGRES_HOW}"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: ``createdb(name)`` makes a database that user `lattice` reaches without a
    password and returns its URL."""

    createdb: Callable[[str], str]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server of this test session (of this pytest-xdist worker: each starts its own) on
    127.0.0.1 at a free port, its unix socket and data in a temporary folder; stops the server at the end. Without
    PostgreSQL's programs the test is skipped (or fails under LATTICE_REQUIRE_SERVICES=1)."""
    import tempfile

    programs = _postgres_programs()
    if programs is None:
        service_missing(f"no PostgreSQL server here (initdb and pg_ctl not found): {POSTGRES_HOW}")
    as_user, owner = _server_user()
    # Not under pytest's temporary folder: the server's user must reach the folder (pytest's is private to root).
    base = Path(tempfile.mkdtemp(prefix="lattice-postgres-"))
    if owner is not None:
        os.chown(base, *owner)
    data = base / "data"

    def run(*command: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *map(str, command)], capture_output=True, text=True, timeout=timeout)

    def first_line(result: subprocess.CompletedProcess[str]) -> str:
        return ((result.stderr or result.stdout).strip().splitlines() or [f"exit status {result.returncode}"])[-1]

    started = False
    try:
        init = run(programs / "initdb", "-D", data, "-U", "lattice", "--auth=trust", "-E", "UTF8", "--no-sync")
        if init.returncode != 0:
            service_missing(f"PostgreSQL's initdb failed ({first_line(init)}): {POSTGRES_HOW}")
        for _ in range(3):  # a port free a moment ago may be taken by another pytest-xdist worker's server
            port = _free_port()
            options = f"-k {base} -h 127.0.0.1 -p {port} -c fsync=off -c max_connections=300"
            start = run(
                programs / "pg_ctl", "-D", data, "-o", options, "-l", base / "server.log", "-w", "-t", "60", "start"
            )
            if start.returncode == 0:
                started = True
                break
        if not started:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            service_missing(
                f"PostgreSQL did not start ({(log.strip().splitlines() or [first_line(start)])[-1]}): {POSTGRES_HOW}"
            )

        def createdb(name: str) -> str:
            created = run(programs / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "lattice", name)
            assert created.returncode == 0, created.stderr
            return f"postgresql://lattice@127.0.0.1:{port}/{name}"

        yield PostgresServer(createdb)
    finally:
        if started:
            run(programs / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database of its own for each test, on the session's server (tests that list the studies must not see
    another test's): yields `postgresql://lattice@127.0.0.1:<port>/<database>`."""
    return postgres_server.createdb(f"lattice_{next(_database_numbers)}")


_database_numbers = itertools.count()
