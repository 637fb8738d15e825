"""The `supportchat` command: serve, token, migrate."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supportchat", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve HTTP and Socket.IO")
    serve.add_argument("--host", help="address to bind (default: SUPPORTCHAT_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: SUPPORTCHAT_PORT or 8000)")

    token = commands.add_parser("token", help="print a token this server accepts")
    token.add_argument("--user-id", required=True)
    token.add_argument("--name", required=True)
    token.add_argument("--email", required=True)
    token.add_argument("--role", default=None, help="e.g. admin, to make an agent's token")
    token.add_argument("--expires-in", type=int, default=86400, help="seconds (default 86400)")

    commands.add_parser("migrate", help="apply database migrations and exit")

    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "token":
        from .auth import issue_token

        if args.expires_in <= 0:
            parser.error("--expires-in must be a positive number of seconds")
        print(
            issue_token(
                settings,
                user_id=args.user_id,
                name=args.name,
                email=args.email,
                role=args.role,
                expires_in=args.expires_in,
            )
        )
        return 0
    _migrate(settings)
    return 0


def _migrate(settings: Settings) -> None:
    from .storage.migrate import upgrade

    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from .app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if host:
        # The address actually bound, for everything that depends on it: the key check
        # below and the demo (Settings.binds_locally).
        settings = settings.model_copy(update={"host": host})
    try:
        settings.check_keys()
    except RuntimeError as exc:
        print(f"supportchat: {exc}", file=sys.stderr)
        return 2
    _migrate(settings)
    if not settings.jwt_public_key:
        settings.signing_secret()  # generates <data_dir>/jwt_secret on first start
    from .shutdown import GracefulServer

    service = create_app(settings)
    config = uvicorn.Config(
        service.app,
        host=settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        ws="websockets-sansio",
        # uvicorn buffers a whole WebSocket frame (decompressed) before Engine.IO can
        # check its size: cap it at the packet limit so a huge frame is refused early.
        ws_max_size=settings.max_http_buffer_size + 1024,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 1,
    )
    server = GracefulServer(config, service.drain, settings.shutdown_grace_seconds)
    if settings.metrics_port is None:
        server.run()
        return 0
    # The metrics port is a second listening socket of the same server (metrics.py
    # answers only /metrics there), so it shares the process's event loop and state.
    sockets = [config.bind_socket()]
    metrics_config = uvicorn.Config(
        service.app, host=settings.metrics_host, port=settings.metrics_port
    )
    sockets.append(metrics_config.bind_socket())
    server.run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
