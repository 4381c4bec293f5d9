"""`nettlege serve [--config FILE] [--host H] [--port P]`."""

from __future__ import annotations

import argparse
import errno
import gc
import os
import ssl
import sys

from aiohttp import web

from .app import build_app
from .config import ConfigError, load_config
from .logs import default_format, setup_logging
from .workers import supervise

# Garbage collection with thousands of open Socket.IO connections (~220 tracked objects each): CPython's default
# thresholds (700, 10, 10) made the server run a full collection every few seconds in the chat benchmark, each
# stopping the event loop for ~0.6 s at 2,000 clients (p50 0.25 s, p99 2.2 s at 450 messages/s). With a larger
# young generation full collections become rare (p50 2 ms, p99 0.29 s, same run). Process-wide, so it is set
# here for a served process only, never in tests; NETTLEGE_GC_TUNING=0 keeps CPython's defaults.
GC_THRESHOLDS = (50_000, 20, 100)


def _tune_gc() -> None:
    if os.environ.get("NETTLEGE_GC_TUNING", "1") != "0":
        gc.freeze()  # what start-up built (modules, schemas, config) lives as long as the process
        gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nettlege", description="nettlege consultation server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="TOML config file (default: the built-in demo municipality)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default $NETTLEGE_PORT or 8080)")
    serve.add_argument("--workers", type=int, default=1,
                       help="run N processes on ports PORT..PORT+N-1 sharing REDIS_URL (one core each)")
    serve.add_argument("--tls-cert", help="PEM certificate: serve https (browsers allow cameras only on https)")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument("--log-format", choices=("json", "text"),
                       help="one JSON object per line, or text (default: json in production, else text; "
                            "also NETTLEGE_LOG_FORMAT)")
    args = parser.parse_args(argv)

    level = os.environ.get("NETTLEGE_LOG_LEVEL", "INFO")
    setup_logging(args.log_format or default_format(os.environ.get("NETTLEGE_ENV") == "production"), level)
    try:
        config = load_config(args.config or os.environ.get("NETTLEGE_CONFIG"), host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"nettlege: {exc}", file=sys.stderr)
        return 2
    log_format = args.log_format or default_format(config.production)
    setup_logging(log_format, level)  # the config file may have said production
    if args.workers > 1:
        if not config.redis_url:
            print("nettlege: --workers needs REDIS_URL: the workers share their state in Redis", file=sys.stderr)
            return 2
        child = ["serve", *(["--config", args.config] if args.config else []), "--host", config.host,
                 "--log-format", log_format]
        return supervise(config, args.workers, child)
    ssl_context = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("nettlege: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"nettlege: cannot load TLS certificate: {exc}", file=sys.stderr)
            return 2
    app = build_app(config)
    _tune_gc()
    scheme = "https" if ssl_context else "http"
    url = config.public_url or f"{scheme}://{config.host}:{config.port}/"

    def announce(_aiohttp_banner: str) -> None:  # called by run_app once the port is bound, not before
        print(f"nettlege is running: open {url} in a browser (Ctrl-C stops it)", flush=True)

    try:
        web.run_app(app, host=config.host, port=config.port, ssl_context=ssl_context, print=announce,
                    access_log=None)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"nettlege: port {config.port} on {config.host} is already in use; choose another with --port "
              "or NETTLEGE_PORT", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
