"""schemathesis against the OpenAPI of a running ``hotline serve`` (seeded database, simulated PBX): no 5xx and
no response that breaks its own schema, for a bounded number of generated requests per operation."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PASSWORD = "schemathesis password"
MAX_EXAMPLES = os.environ.get("HOTLINE_SCHEMATHESIS_EXAMPLES", "25")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    env["HOTLINE_SIMULATOR_CALLS_PER_HOUR"] = "3600"
    env["HOTLINE_LOG_LEVEL"] = "WARNING"
    return env


def test_generated_requests_find_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    env = _env(tmp_path)
    hotline = [sys.executable, "-m", "hotline.cli"]
    subprocess.run([*hotline, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    subprocess.run([*hotline, "create-user", "fuzz", "--role", "admin", "--password-stdin"], env=env, check=True,
                   input=PASSWORD + "\n", text=True, capture_output=True, timeout=60)  # fmt: skip
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([*hotline, "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = httpx.post(f"{base}/api/auth/login", json={"username": "fuzz", "password": PASSWORD}).json()
        cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        result = subprocess.run(
            [
                cli, "run", f"{base}/openapi.json",
                "--header", f"Authorization: Bearer {token['access_token']}",
                "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
                "--max-examples", MAX_EXAMPLES,
                "--seed", "20261125",
                "--phases", "examples,coverage,fuzzing",
                "--exclude-path", "/api/auth/logout",  # it would revoke the token the run uses
                "--exclude-path", "/api/auth/login",  # it would lock the account (rate limit) on purpose
                "--request-timeout", "10",
                "--no-color",
            ],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        report = Path(__file__).resolve().parents[1] / "test-output" / "schemathesis.txt"
        report.parent.mkdir(exist_ok=True)
        report.write_text(result.stdout + result.stderr, encoding="utf-8")
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:]) + f"\n(full output: {report})"
        assert result.returncode == 0, tail
        server_log = (tmp_path / "serve.log").read_text()
        assert PASSWORD not in server_log and token["access_token"] not in server_log
    finally:
        server.terminate()
        server.wait(timeout=20)
