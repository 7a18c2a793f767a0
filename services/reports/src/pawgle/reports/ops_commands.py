"""`pawgle-ops reports partners ...`: issue, list and revoke partner API keys.

    pawgle-ops reports partners add NAME --user-id N [--photo-host HOST[:PORT] ...]
    pawgle-ops reports partners list
    pawgle-ops reports partners revoke ID

The key is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import sys

from sqlmodel import Session, col, select

from pawgle.common.db import make_engine, save
from pawgle.common.schemas import check_text
from pawgle.reports.config import Settings
from pawgle.reports.models import Partner
from pawgle.reports.partners import hash_key, new_key

COMMANDS = ("partners",)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pawgle-ops reports", description="Operate the reports service.")
    commands = parser.add_subparsers(dest="command", required=True)
    partners = commands.add_parser("partners", help="partner organisations and their feed keys")
    actions = partners.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register a partner and print its new API key")
    add.add_argument("name")
    add.add_argument("--user-id", type=int, required=True, help="the organisation's PawGle account (the reporter)")
    add.add_argument("--photo-host", action="append", default=[], help="a host its photo URLs may use (repeatable)")
    actions.add_parser("list", help="every partner: id, name, account, photo hosts, revoked")
    revoke = actions.add_parser("revoke", help="stop a partner's key from working")
    revoke.add_argument("id", type=int)
    return parser


def main(argv: list[str], settings: Settings | None = None) -> int:
    """Run one command against the reports database (the service's own settings and env)."""
    args = build_parser().parse_args(argv)
    settings = settings or Settings(run_workers=False)
    engine = make_engine(settings.db_url)
    try:
        with Session(engine) as session:
            if args.action == "add":
                try:
                    name = check_text(args.name)[:100]
                except ValueError as exc:
                    _out(f"name {exc}")
                    return 2
                if args.user_id < 1:
                    _out("--user-id must be a positive user id")
                    return 2
                key = new_key()
                hosts = ",".join(sorted({h.strip().lower() for h in args.photo_host if h.strip()}))
                partner = save(
                    session, Partner(name=name, user_id=args.user_id, key_hash=hash_key(key), photo_hosts=hosts)
                )
                session.commit()
                _out(f"partner {partner.id} {name}: key {key}")
                _out("Give the key to the partner now; it is not shown again.")
            elif args.action == "list":
                for partner in session.exec(select(Partner).order_by(col(Partner.id))):
                    state = "revoked" if partner.revoked else "active"
                    _out(f"{partner.id}\t{partner.name}\tuser {partner.user_id}\t{partner.photo_hosts or '-'}\t{state}")
            else:
                partner = session.get(Partner, args.id)
                if partner is None:
                    _out(f"no partner {args.id}")
                    return 1
                partner.revoked = True
                save(session, partner)
                session.commit()
                _out(f"partner {partner.id} revoked")
    finally:
        engine.dispose()
    return 0
