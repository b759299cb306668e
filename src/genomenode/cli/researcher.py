"""A researcher's commands: ``genomenode login``, ``logout``, ``apply``,
``applications`` and ``grants``, each a few lines over :mod:`genomenode.client`.

Tokens are kept by :class:`~genomenode.client.tokens.TokenStore` (0600) and never
printed; ``genomenode fetch`` uses the same sign-in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from .options import (
    access_end,
    command,
    errors_to_exit,
    json_option,
    print_result,
)

__all__ = ["RESEARCHER_COMMANDS"]


def _node_url_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--node",
        "--server",
        "node_url",
        envvar="GENOMENODE_NODE_URL",
        show_envvar=True,
        required=True,
        help="The node's URL, e.g. https://node.example.",
    )(function)


def broker_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--broker``: which sign-in's token to use (default: the last login)."""
    return click.option(
        "--broker",
        envvar="GENOMENODE_BROKER",
        show_envvar=True,
        default=None,
        help="Which sign-in to use (default: the last `genomenode login`).",
    )(function)


def _node(node_url: str, broker: str | None) -> Any:
    from ..client.node import NodeClient
    from ..client.oidc import access_token

    token = access_token(broker)
    assert token is not None  # required=True raises instead
    return NodeClient(node_url, token)


@command()
@click.option(
    "--broker",
    envvar="GENOMENODE_BROKER",
    required=True,
    help="The broker's URL (its OpenID issuer), e.g. http://localhost:8080/dev-idp "
    "for a demo node's development provider (or $GENOMENODE_BROKER).",
)
@click.option(
    "--client-id",
    envvar="GENOMENODE_CLIENT_ID",
    default="genomenode-cli",
    show_default=True,
    help="The OAuth client registered with the broker.",
)
@json_option
@errors_to_exit
def login(broker: str, client_id: str, as_json: bool) -> None:
    """Sign in at a broker; tokens kept private, never shown."""
    from ..client.oidc import login as sign_in
    from ..client.tokens import TokenStore

    def show(authorization: Any) -> None:
        url = authorization.verification_uri_complete
        click.echo(
            f"To sign in, open\n  {url or authorization.verification_uri}\n"
            + ("" if url else f"and enter the code {authorization.user_code}\n")
            + f"(code {authorization.user_code}; waiting for you to approve...)",
            err=True,
        )

    store = TokenStore()
    signed = sign_in(broker, show=show, store=store, client_id=client_id)
    print_result(
        {**signed.public(), "tokens_file": str(store.path)},
        as_json,
        f"Signed in at {signed.broker} as {signed.subject or 'an unnamed subject'}; "
        f"the tokens are in {store.path} (readable by you only).",
    )


@command()
@broker_option
@json_option
@errors_to_exit
def logout(broker: str | None, as_json: bool) -> None:
    """Forget the tokens of a sign-in (default: the last one)."""
    from ..client.tokens import TokenStore

    store = TokenStore()
    with store.locked():
        forgotten = store.forget(broker)
    print_result(
        {"broker": forgotten.broker if forgotten else None},
        as_json,
        f"Signed out of {forgotten.broker}." if forgotten else "Not signed in.",
    )


@command()
@_node_url_option
@click.option("--dataset", "dataset_id", required=True, help="The dataset's id.")
@click.option(
    "--purpose",
    required=True,
    help="The DUO term of the research: DUO:0000042 (general research), "
    "DUO:0000006 (health/medical/biomedical), DUO:0000007 (disease-specific, "
    "with --disease), DUO:0000011 (population origins or ancestry).",
)
@click.option("--disease", default=None, help="The disease of DUO:0000007 (a CURIE).")
@click.option("--title", required=True, help="The project's title.")
@click.option("--description", default="", help="What the project will do.")
@click.option(
    "--accept",
    "accepted",
    multiple=True,
    help="A DUO modifier you accept, e.g. DUO:0000019 (publication required).",
)
@click.option("--member", "members", multiple=True, help="A co-applicant's subject.")
@click.option("--draft", is_flag=True, help="Keep it as a draft (not submitted).")
@broker_option
@json_option
@errors_to_exit
def apply(
    node_url: str,
    dataset_id: str,
    purpose: str,
    disease: str | None,
    title: str,
    description: str,
    accepted: tuple[str, ...],
    members: tuple[str, ...],
    draft: bool,
    broker: str | None,
    as_json: bool,
) -> None:
    """Apply to a dataset's data access committee."""
    research = {
        "term": purpose,
        **({"disease": disease} if disease else {}),
        "accepted": list(accepted),
    }
    with _node(node_url, broker) as node:
        application = node.apply(
            dataset_id=dataset_id,
            project_title=title,
            purpose=research,
            purpose_text=description,
            members=members,
            submit=not draft,
        )
    recommendation = application["recommendation"]
    print_result(
        application,
        as_json,
        f"Application {application['id']} for {dataset_id} is {application['state']}"
        f"; DUO says {recommendation['outcome']}"
        + "".join(f"\n  - {reason}" for reason in recommendation["reasons"]),
    )


def _application_line(application: dict[str, Any]) -> str:
    grant = application.get("grant") or {}
    until = f"  until {grant['ends_at'][:10]}" if grant.get("ends_at") else ""
    return (
        f"{application['id']:>5}  {application['state']:<9}  "
        f"{application['dataset_id']}  DUO says "
        f"{application['recommendation']['outcome']}  "
        f"{application['project_title']!r}{until}"
    )


@command()
@_node_url_option
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's.")
@click.option("--state", default=None, help="Only in this state (e.g. submitted).")
@broker_option
@json_option
@errors_to_exit
def applications(
    node_url: str,
    dataset_id: str | None,
    state: str | None,
    broker: str | None,
    as_json: bool,
) -> None:
    """List your applications on a node."""
    with _node(node_url, broker) as node:
        found = node.applications(dataset_id=dataset_id, state=state)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    elif not found:
        click.echo("No applications.")
    else:
        click.echo("\n".join(_application_line(item) for item in found))


@command()
@_node_url_option
@click.option(
    "--all", "include_inactive", is_flag=True, help="Revoked and ended grants too."
)
@broker_option
@json_option
@errors_to_exit
def grants(
    node_url: str, include_inactive: bool, broker: str | None, as_json: bool
) -> None:
    """List your grants on a node, and until when they run."""
    with _node(node_url, broker) as node:
        found = node.grants(include_inactive=include_inactive)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    elif not found:
        click.echo("No grants.")
    else:
        click.echo(
            "\n".join(
                f"{item['dataset_id']}  until {access_end(item['ends_at'])}  "
                f"(application {item['application_id']})"
                + ("  REVOKED" if item.get("revoked_at") else "")
                for item in found
            )
        )


#: The researcher's top-level commands.
RESEARCHER_COMMANDS: tuple[click.Command, ...] = (
    login,
    logout,
    apply,
    applications,
    grants,
)
