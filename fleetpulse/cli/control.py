"""``fleetpulse control keygen``: the key pair that signs policy and silence records."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fleetpulse.cli.common import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "control",
        help="keys that authenticate policy and silence changes",
        description="Policy and silence records are signed with an Ed25519 private key held by the people"
        " and tools that apply changes (--signing-key); workers obey only records signed by a key they trust"
        " (--trusted-key). See SECURITY.md.",
    )
    actions = p.add_subparsers(dest="control_command", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen", help="write a new key pair: NAME.key (private, mode 0600) and NAME.pub (public)"
    )
    keygen.add_argument("--out", default=".", help="directory to write into (default the current one)")
    keygen.add_argument("--name", default="control", help="file name stem (default %(default)s)")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key pair")
    keygen.set_defaults(func=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    """Write the pair; refuses to overwrite unless ``--force`` (a lost private key cannot be recovered)."""
    from policies.signing import fingerprint, new_private_key_pem, verifier_from_pems

    out = Path(args.out)
    private, public = out / f"{args.name}.key", out / f"{args.name}.pub"
    if not args.force and (private.exists() or public.exists()):
        sys.stderr.write(f"fleetpulse control keygen: {private} or {public} exists (use --force to replace)\n")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = new_private_key_pem()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # also when the file existed with a looser mode
        f.write(private_pem)
    public.write_bytes(public_pem)
    key_id = fingerprint(verifier_from_pems([(public_pem, str(public))]).keys[0])
    print(f"wrote {private} (private: give it to those who apply policies and silences, --signing-key)")
    print(f"wrote {public} (public: give it to every worker, --trusted-key); key id {key_id}")
    return 0
