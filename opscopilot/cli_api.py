"""``opscopilot serve`` (the API and the web incident room) and ``opscopilot token`` (API tokens)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from opscopilot.settings import Settings


def _open_stores(settings: Settings):
    from flows.ingest import default_store_factory
    from sinks.postgres import open_postgres

    pg, embedded = open_postgres(settings.postgres_url, settings.data_root)
    return pg, embedded, default_store_factory(settings)


def make_token(pg_store, tenant: str, role: str, name: str, by: str = "cli") -> str:
    """A new API token for ``tenant`` (the tenant is created if new); returns the secret."""
    from api.security import new_token
    from sinks.postgres_api import ApiDatabase

    pg_store.ensure_tenant(tenant, tenant)
    secret = new_token()
    db = ApiDatabase(pg_store.url, min_size=1, max_size=1)
    db.open()
    try:
        db.create_token(tenant, name, role, secret, created_by=by)
    finally:
        db.close()
    return secret


def start_background_api(settings: Settings, pg_store, store, host: str, port: int):
    """The API in a thread of this process (sharing its chdb engine); falls back to a free port
    when ``port`` is taken."""
    from api.server import BackgroundServer, configure_logging

    configure_logging(access_log=False)
    try:
        return BackgroundServer(settings, pg_store.url, store, host=host, port=port).start()
    except RuntimeError:
        if port == 0:
            raise
        print(f"[api] port {port} is taken; using a free one", file=sys.stderr)
        return BackgroundServer(settings, pg_store.url, store, host=host, port=0).start()


def cmd_serve(args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]) -> int:
    from api.server import configure_logging, serve

    settings = settings_fn(args)
    pg, embedded, factory = _open_stores(settings)
    try:
        store = factory()
        host = args.host or settings.api_host
        port = settings.api_port if args.port is None else args.port
        configure_logging(access_log=not args.quiet)
        if args.token_for:
            secret = make_token(pg, args.token_for, "admin", "serve --token-for")
            print(f"admin token for tenant {args.token_for} (shown once): {secret}")
        print(f"[serve] incident room and API on http://{host}:{port}/  (OpenAPI docs at /docs); "
              f"Postgres {pg.redacted_url}, {store!r}", file=sys.stderr)
        serve(settings, pg.url, store, host=host, port=port)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_token(args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]) -> int:
    from sinks.postgres import open_postgres
    from sinks.postgres_api import ApiDatabase

    settings = settings_fn(args)
    tenant = args.tenant or settings.default_tenant
    pg, embedded = open_postgres(settings.postgres_url, settings.data_root)
    try:
        if args.action == "create":
            secret = make_token(pg, tenant, args.role, args.name)
            if args.json:
                print(json.dumps({"tenant": tenant, "role": args.role, "name": args.name, "token": secret}))
            else:
                print(f"{args.role} token {args.name!r} for tenant {tenant} (shown once, store it now):\n{secret}")
            return 0
        db = ApiDatabase(pg.url, min_size=1, max_size=1)
        db.open()
        try:
            if args.action == "list":
                rows = db.list_tokens(tenant)
                if args.json:
                    print(json.dumps(rows, default=str))
                else:
                    print(f"{len(rows)} tokens of tenant {tenant}:")
                    for r in rows:
                        state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "live"
                        print(f"  {r['id']}  {r['role']:<9} {r['name']:<24} {state}")
                return 0
            row = db.revoke_token(tenant, args.id or "")
            if row is None:
                raise ValueError(f"no token {args.id} in tenant {tenant}")
            print(f"revoked {row['id']} ({row['name']})")
            return 0
        finally:
            db.close()
    finally:
        if embedded is not None:
            embedded.stop()


def add_parsers(sub, add_backend_flags, settings_fn) -> None:
    s = sub.add_parser("serve", help="the API and the web incident room (http://127.0.0.1:8080/)",
                       description="Serve the incident API (OpenAPI at /docs) and the web incident room at /. "
                                   "With embedded stores, run it while no stream job uses the same data dir "
                                   "(one chdb engine per process), or use `opscopilot demo`, which runs both.")
    s.add_argument("--host", help="bind address (OPSCOPILOT_API_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (OPSCOPILOT_API_PORT, default 8080)")
    s.add_argument("--token-for", metavar="TENANT", help="print a new admin token for TENANT first")
    s.add_argument("--quiet", action="store_true", help="no access log lines")
    add_backend_flags(s)
    s.set_defaults(func=lambda a: cmd_serve(a, settings_fn))

    t = sub.add_parser("token", help="API tokens: create (shown once), list, revoke",
                       description="Manage API tokens of a tenant. Only a token's hash is stored; the secret is "
                                   "printed once by `create`.")
    t.add_argument("action", choices=["create", "list", "revoke"])
    t.add_argument("--role", choices=["viewer", "responder", "approver", "admin"], default="viewer",
                   help="create: the token's role (default viewer)")
    t.add_argument("--name", default="cli", help="create: a name to recognise the token by")
    t.add_argument("--id", help="revoke: the token's id (from `token list`)")
    t.add_argument("--json", action="store_true", help="print JSON")
    add_backend_flags(t)
    t.set_defaults(func=lambda a: cmd_token(a, settings_fn))
