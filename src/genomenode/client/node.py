"""A node's access API as a researcher calls it: apply, follow applications, grants.

The routes are those of ``/access`` (docs/access.md, "HTTP API"); the token is the
researcher's passport from their broker (:func:`.oidc.access_token`). A refusal
becomes the error of genomenode's tree that matches its status, with the node's
own words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx2

from ..config import Secret
from ..errors import (
    AuthenticationRequired,
    ConflictError,
    GenomenodeError,
    InputError,
    NotFoundError,
    PermissionDenied,
)

__all__ = ["NodeClient"]

_TIMEOUT = 60.0
_ERRORS: Mapping[int, type[GenomenodeError]] = {
    400: InputError,
    401: AuthenticationRequired,
    403: PermissionDenied,
    404: NotFoundError,
    409: ConflictError,
}


class NodeClient:
    """The ``/access`` API of the node at ``url``, as ``token``'s holder.

    Parameters
    ----------
    url
        The node's public URL (``https://node.example``).
    token
        The researcher's access token or passport.
    http
        The HTTP client (tests); a new one otherwise, closed by :meth:`close`.
    """

    def __init__(
        self, url: str, token: Secret, *, http: httpx2.Client | None = None
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise InputError(
                f"{url!r} is not a node URL (https://...); the node directory is "
                "for operators' commands",
                field="--node",
            )
        self.url = url.rstrip("/")
        self._token = token
        self._own = http is None
        self._http = http if http is not None else httpx2.Client(timeout=_TIMEOUT)

    def __repr__(self) -> str:
        return f"NodeClient({self.url!r})"

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **options: Any) -> Any:
        url = f"{self.url}/access{path}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        try:
            response = self._http.request(method, url, headers=headers, **options)
        except httpx2.HTTPError as error:
            raise GenomenodeError(f"{url}: cannot reach the node: {error}") from None
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.status_code >= 400:
            detail = document.get("detail") if isinstance(document, dict) else None
            error_type = _ERRORS.get(response.status_code, GenomenodeError)
            message = f"{self.url}: {detail or response.reason_phrase}"
            if error_type is InputError:
                raise InputError(message)
            raise error_type(message)
        if not isinstance(document, dict):
            raise GenomenodeError(f"{url}: the answer is not a JSON object")
        return document

    def apply(
        self,
        *,
        dataset_id: str,
        project_title: str,
        purpose: Mapping[str, Any],
        purpose_text: str = "",
        members: Sequence[str] = (),
        submit: bool = True,
    ) -> dict[str, Any]:
        """Apply for ``dataset_id``; the application as the node answers it.

        ``purpose`` is the research purpose (``{"term": "DUO:0000042"}``...);
        ``submit`` sends it to the committee at once, else it stays a draft.
        """
        return dict(
            self._call(
                "POST",
                "/applications",
                json={
                    "dataset": dataset_id,
                    "project_title": project_title,
                    "purpose": dict(purpose),
                    "purpose_text": purpose_text,
                    "members": list(members),
                    "submit": submit,
                },
            )
        )

    def applications(
        self, *, dataset_id: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        """The applications the researcher may see, oldest first."""
        params = {
            key: value
            for key, value in (("dataset", dataset_id), ("state", state))
            if value is not None
        }
        return list(self._call("GET", "/applications", params=params)["applications"])

    def grants(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        """The researcher's grants on this node (in force, or all)."""
        params = {"all": "true"} if include_inactive else {}
        return list(self._call("GET", "/grants", params=params)["grants"])
