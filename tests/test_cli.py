"""The ``hotline`` command as a person runs it: real processes, real files, real ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HOTLINE = [sys.executable, "-m", "hotline.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env.update(extra)
    return env


def _run(
    args: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(HOTLINE + args, env=env, input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run(["--help"], _env(tmp_path))
    assert result.returncode == 0
    for command in ("serve", "migrate", "create-user", "simulate"):
        assert command in result.stdout


def test_version(tmp_path: Path) -> None:
    from hotline import __version__

    result = _run(["--version"], _env(tmp_path))
    assert result.returncode == 0 and __version__ in result.stdout


def test_migrate_then_create_user(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["migrate"], env).returncode == 0
    created = _run(
        ["create-user", "ana", "--role", "operator", "--device", "PJSIP/op101", "--password-stdin"],
        env,
        stdin="correct horse battery\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created operator 'ana'" in created.stdout
    assert "correct horse" not in created.stdout + created.stderr
    again = _run(["create-user", "ana", "--role", "admin", "--password-stdin"], env, stdin="another password\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr and "Traceback" not in again.stderr


def test_create_user_rejects_bad_input(tmp_path: Path) -> None:
    env = _env(tmp_path)
    short = _run(["create-user", "bob", "--role", "operator", "--password-stdin"], env, stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    bad_device = _run(
        ["create-user", "bob", "--role", "operator", "--device", "PJSIP/op1;x", "--password-stdin"],
        env,
        stdin="long enough pw\n",
    )
    assert bad_device.returncode == 1 and "device" in bad_device.stderr


def test_bad_database_url_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(["migrate"], _env(tmp_path, HOTLINE_DATABASE_URL="mysql://nope"))
    assert result.returncode == 2
    assert "HOTLINE_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_postgres_says_so(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{_free_port()}/nothing"
    result = _run(["serve"], _env(tmp_path, HOTLINE_DATABASE_URL=url))
    assert result.returncode == 1
    assert "cannot reach PostgreSQL" in result.stderr and "Traceback" not in result.stderr


def test_outdated_schema_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path, HOTLINE_AUTO_MIGRATE="false")
    result = _run(["serve", "--port", str(_free_port())], env)
    assert result.returncode == 1
    assert "hotline migrate" in result.stderr


def test_several_workers_need_postgresql_and_a_real_pbx(tmp_path: Path) -> None:
    """SQLite has no listener lease, and each worker would start its own simulator: refused before anything runs."""
    on_sqlite = _run(["serve", "--port", str(_free_port()), "--workers", "2"], _env(tmp_path, HOTLINE_AMI__HOST="pbx"))
    assert on_sqlite.returncode == 2 and "Traceback" not in on_sqlite.stderr
    assert "--workers 2 needs PostgreSQL" in on_sqlite.stderr
    postgres = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"
    simulated = _run(["serve", "--workers", "2"], _env(tmp_path, HOTLINE_DATABASE_URL=postgres))
    assert simulated.returncode == 2 and "needs a real PBX" in simulated.stderr
    by_env = _run(["serve"], _env(tmp_path, HOTLINE_API_WORKERS="3"))
    assert by_env.returncode == 2 and "--workers 3 needs PostgreSQL" in by_env.stderr


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(["serve", "--port", str(port)], env)
    assert result.returncode == 1 and "cannot listen" in result.stderr


def test_serve_answers_health_and_records_simulated_calls(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, HOTLINE_SIMULATOR_CALLS_PER_HOUR="20000")
    proc = subprocess.Popen(
        [*HOTLINE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 45
        body = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                body = response.json()
                pbx = body.get("pbx", {}).get("pbx1", {})
                refreshed = body.get("reports", {}).get("roll_up_runs", 0) >= 1
                if response.status_code == 200 and pbx.get("calls_written", 0) > 0 and refreshed:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        assert body is not None and body["status"] == "ok", proc.stdout.read() if proc.poll() is not None else body
        assert body["pbx"]["pbx1"]["calls_written"] > 0
        assert body["reports"]["roll_up_runs"] >= 1 and body["reports"]["roll_up_failures"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_week_fills_an_empty_database_once(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["migrate"], env).returncode == 0
    first = _run(["demo-week", "--start", "2026-11-16", "--seed", "3"], env)
    assert first.returncode == 0, first.stderr
    assert "calls on" in first.stdout
    again = _run(["demo-week", "--start", "2026-11-16"], env)
    assert again.returncode == 1 and "nothing was written" in again.stderr
    bad = _run(["demo-week", "--start", "16/11/2026"], env)
    assert bad.returncode == 2 and "--start" in bad.stderr
