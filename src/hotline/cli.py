"""The ``hotline`` command: serve, migrate, create-user, simulate.

Every failure a person can fix ends with one line saying what to do and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from hotline import __version__
from hotline.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("hotline")


class CliError(Exception):
    """A failure with a message for the person at the terminal."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"HOTLINE_{'__'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise CliError(f"invalid configuration: {problems}", EXIT_USAGE) from None


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _describe_db_error(settings: Settings, exc: BaseException) -> str:
    if settings.is_sqlite:
        return f"cannot open the SQLite database {settings.database_url!r}: {exc}"
    return (
        f"cannot reach PostgreSQL for HOTLINE_DATABASE_URL ({type(exc).__name__}: {exc}). "
        "Check that the server runs and that the host, port, user and database name are right."
    )


async def _check_database(settings: Settings) -> None:
    from hotline.bootstrap import ensure_schema
    from hotline.db.engine import make_engine
    from hotline.errors import SchemaOutdated

    engine = make_engine(settings.database_url)
    try:
        await ensure_schema(settings, engine)
    except SchemaOutdated as exc:
        raise CliError(exc.message) from None
    except (OSError, ConnectionError) as exc:
        raise CliError(_describe_db_error(settings, exc)) from None
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite")):
            raise CliError(_describe_db_error(settings, exc)) from None
        raise
    finally:
        await engine.dispose()


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another hotline running? "
                "Choose another port with --port or HOTLINE_API_PORT."
            ) from None


def _check_workers(settings: Settings, workers: int) -> None:
    """Several workers need what makes several processes safe: PostgreSQL's listener lease and a real PBX."""
    if workers <= 1:
        return
    if settings.is_sqlite:
        raise CliError(
            f"--workers {workers} needs PostgreSQL: on SQLite there is no listener lease, so every worker would "
            "follow the PBX and record each call several times (and SQLite takes one writer at a time). "
            "Use --workers 1, or HOTLINE_DATABASE_URL=postgresql+asyncpg://...",
            EXIT_USAGE,
        )
    if settings.ami.simulated:
        raise CliError(
            f"--workers {workers} needs a real PBX (HOTLINE_AMI__HOST): the built-in simulator lives inside one "
            "process, and each worker would start its own. Use --workers 1 with the simulator.",
            EXIT_USAGE,
        )


def worker_app() -> FastAPI:
    """The app of one ``hotline serve --workers N`` process. Uvicorn starts the workers as new interpreters and
    calls this in each, so each reads the same HOTLINE_* settings (and .env) as the command did, and runs its own
    lifespan: engine, console push, and a bid for each PBX's listener lease (one worker wins each)."""
    from hotline.api.app import create_app

    settings = _settings()
    _configure_logging(settings)
    return create_app(settings, tune_gc=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hotline.api.app import create_app

    settings = _settings(api_host=args.host, api_port=args.port, api_workers=args.workers)
    _check_workers(settings, settings.api_workers)
    _configure_logging(settings)
    asyncio.run(_check_database(settings))
    _check_port_free(settings.api_host, settings.api_port)
    where = "the built-in PBX simulator" if settings.ami.simulated else f"Asterisk at {settings.ami.host}"
    log.info(
        "hotline %s serving on http://%s:%s with %d worker(s) (PBX: %s)",
        __version__,
        settings.api_host,
        settings.api_port,
        settings.api_workers,
        where,
    )
    if settings.api_workers > 1:
        uvicorn.run(
            "hotline.cli:worker_app",
            factory=True,
            workers=settings.api_workers,
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
        )
        return EXIT_OK
    uvicorn.run(
        create_app(settings, tune_gc=True),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
    return EXIT_OK


def cmd_migrate(_args: argparse.Namespace) -> int:
    from hotline.db.migrate import head_revision, upgrade

    settings = _settings()
    _configure_logging(settings)
    try:
        upgrade(settings.database_url)
    except (OSError, ConnectionError) as exc:
        raise CliError(_describe_db_error(settings, exc)) from None
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            raise CliError(_describe_db_error(settings, exc)) from None
        raise
    print(f"database schema is at revision {head_revision()}")
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("the two passwords differ; nothing was created")
    if not password:
        raise CliError("an empty password is not accepted; nothing was created")
    return password


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> int:
    from hotline.bootstrap import build_runtime
    from hotline.errors import HotlineError
    from hotline.users import create_user

    runtime = await build_runtime(settings, start_services=False)
    try:
        async with runtime.sessions() as session:
            try:
                user = await create_user(
                    session,
                    username=args.username,
                    password=password,
                    role=args.role,
                    full_name=args.full_name or "",
                    device=args.device,
                )
                await session.commit()
            except HotlineError as exc:
                raise CliError(f"{exc.message}; nothing was created") from None
        print(f"created {user.role} {user.username!r} (id {user.id})")
        return EXIT_OK
    finally:
        await runtime.close()


def cmd_create_user(args: argparse.Namespace) -> int:
    settings = _settings()
    _configure_logging(settings)
    password = _read_password(args)
    return asyncio.run(_create_user(settings, args, password))


async def _demo_week(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from hotline.bootstrap import build_runtime
    from hotline.errors import HotlineError
    from hotline.services.demo_week import generate_demo_week

    start = date.fromisoformat(args.start) if args.start else date.today() - timedelta(days=7)
    runtime = await build_runtime(settings, start_services=False)
    try:
        summary = await generate_demo_week(runtime, start=start, seed=args.seed, timezone=settings.timezone)
    except HotlineError as exc:
        raise CliError(f"{exc.message}; nothing was written") from None
    finally:
        await runtime.close()
    print(
        f"demo week {summary.start} .. {summary.end}: {summary.calls} calls on {summary.lines} lines, "
        f"{summary.operators} operators, {summary.registrations} registrations. "
        "Open /reports/first-week as a supervisor (hotline create-user NAME --role supervisor)."
    )
    return EXIT_OK


def cmd_demo_week(args: argparse.Namespace) -> int:
    settings = _settings()
    _configure_logging(settings)
    if args.start:
        try:
            __import__("datetime").date.fromisoformat(args.start)
        except ValueError:
            raise CliError(f"--start must be a date like 2026-11-16, not {args.start!r}", EXIT_USAGE) from None
    return asyncio.run(_demo_week(settings, args))


def cmd_simulate(args: argparse.Namespace) -> int:
    from hotline.ami.simulator import run_simulator

    settings = _settings()
    _configure_logging(settings)
    secret = settings.ami.secret.get_secret_value() or "hotline"
    print(f"PBX simulator: AMI on {args.host}:{args.port}, user {settings.ami.username!r}. Ctrl-C stops it.")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_simulator(
                args.host,
                args.port,
                username=settings.ami.username,
                secret=secret,
                calls_per_hour=args.calls_per_hour or settings.simulator_calls_per_hour,
                seed=args.seed,
            )
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Asterisk-integrated hotline backend. Configuration comes from HOTLINE_* environment variables "
        "(or a .env file); see the README.",
    )
    parser.add_argument("--version", action="version", version=f"hotline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the API, the AMI listener and the scheduler in one process")
    serve.add_argument("--host", help="address to bind (default HOTLINE_API_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default HOTLINE_API_PORT, 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="API processes sharing the port (default HOTLINE_API_WORKERS, 1); more than 1 needs PostgreSQL and a "
        "real PBX",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade the database schema to the latest revision")
    migrate.set_defaults(func=cmd_migrate)

    user = sub.add_parser(
        "create-user", help="create an admin, supervisor or operator (prompts for a password)"
    )
    user.add_argument("username")
    user.add_argument("--role", required=True, choices=["admin", "supervisor", "operator"])
    user.add_argument("--full-name", help="name shown in the console and said in the greeting")
    user.add_argument("--device", help="the operator's Asterisk interface, e.g. PJSIP/op101")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.set_defaults(func=cmd_create_user)

    demo = sub.add_parser("demo-week", help="fill an EMPTY database with a realistic simulated first week")
    demo.add_argument("--start", help="first day, YYYY-MM-DD (default: a week ago)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.set_defaults(func=cmd_demo_week)

    sim = sub.add_parser(
        "simulate", help="run the built-in PBX simulator (an AMI server with generated calls)"
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=5038)
    sim.add_argument("--calls-per-hour", type=float, help="mean arrival rate (default 120)")
    sim.add_argument("--seed", type=int, help="random seed, for a repeatable stream")
    sim.set_defaults(func=cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"hotline: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
