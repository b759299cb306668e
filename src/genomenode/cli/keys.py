"""``genomenode keys``: a researcher's Crypt4GH keys."""

from __future__ import annotations

import os
import pathlib

import click

from .options import errors_to_exit, group, json_option, print_result

__all__ = ["keys"]

#: The variable the crypt4gh tools read the secret key's passphrase from, too.
PASSPHRASE_VARIABLE = "C4GH_PASSPHRASE"


@group()
def keys() -> None:
    """Crypt4GH keys of a researcher (to receive data encrypted to them)."""


@keys.command("generate")
@click.argument("prefix", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--passphrase",
    "ask_passphrase",
    is_flag=True,
    help="Ask for a passphrase (typed twice, not shown) to encrypt the secret key.",
)
@json_option
@errors_to_exit
def keys_generate(prefix: pathlib.Path, ask_passphrase: bool, as_json: bool) -> None:
    """Write PREFIX.sec and PREFIX.pub, readable by the crypt4gh tools.

    The secret key is encrypted with a passphrase asked for with --passphrase,
    or taken from $C4GH_PASSPHRASE (which `crypt4gh decrypt` reads too);
    otherwise it is stored unencrypted, readable by you only. A passphrase is
    never taken on the command line, where other users could see it.
    """
    from ..config import Secret
    from ..transfer.crypt4gh import generate_user_keypair

    if ask_passphrase:
        passphrase = Secret(
            click.prompt(
                f"Passphrase for {prefix}.sec",
                hide_input=True,
                confirmation_prompt=True,
            )
        )
    else:
        passphrase = Secret(os.environ.get(PASSPHRASE_VARIABLE, ""))
    secret, public = prefix.with_suffix(".sec"), prefix.with_suffix(".pub")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    generate_user_keypair(secret, public, passphrase)
    encrypted = bool(passphrase)
    print_result(
        {"secret_key": str(secret), "public_key": str(public), "encrypted": encrypted},
        as_json,
        f"Wrote {secret} (keep it; "
        + ("passphrase-protected" if encrypted else "NOT passphrase-protected")
        + f") and {public} (send it: Crypt4GH-Public-Key).",
    )
