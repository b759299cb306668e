"""A real S3 API for tests: ``moto.server`` as a separate process on loopback,
with authentication on (one IAM user whose keys the node is given), so a wrong
secret is refused as a real service would refuse it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest import ingest
from genomenode.store.node import Node, init_node

from ..conftest import free_port, grant_access, in_process_workers
from ..network.test_network import _stop

BUCKET = "genomes"


@dataclasses.dataclass(frozen=True)
class S3Service:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen

    def environment(self, *, secret: str | None = None) -> dict[str, str]:
        """The AWS environment a node (or a worker) needs to reach the bucket."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret or self.secret_access_key,
            "AWS_REGION": "us-east-1",
        }


def _wait_up(endpoint: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto.server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("moto.server did not start")


@contextlib.contextmanager
def s3_service() -> Iterator[S3Service]:
    """moto.server with IAM authentication, an IAM user with full rights, and
    the bucket :data:`BUCKET`."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # The first requests (creating the user and its keys) need no signature;
    # every later one is checked against IAM.
    environment = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    # moto logs every request: to /dev/null, as a pipe nobody reads would fill
    # and stall the server.
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_up(endpoint, process)
        anonymous = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "bootstrap",
            "aws_secret_access_key": "bootstrap",
        }
        iam = boto3.client("iam", **anonymous)
        iam.create_user(UserName="node")
        iam.put_user_policy(
            UserName="node",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="node")["AccessKey"]
        service = S3Service(
            endpoint, key["AccessKeyId"], key["SecretAccessKey"], process
        )
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=service.access_key_id,
            aws_secret_access_key=service.secret_access_key,
        ).create_bucket(Bucket=BUCKET)
        yield service
    finally:
        _stop(process)


@contextlib.contextmanager
def s3_in_environment() -> Iterator[S3Service]:
    """:func:`s3_service`, its AWS environment set in this process while it runs
    (nodes opened in the test read their credentials from there), then restored."""
    with s3_service() as service, _environment(service.environment()):
        yield service


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ingested_node(
    directory: pathlib.Path,
    dataset_yamls: Sequence[pathlib.Path],
    *,
    sealed: bool = False,
    storage: str | None = None,
    endpoint: str | None = None,
) -> Node:
    """A new node (``fi-node``) holding ``dataset_yamls``, ingested in-process: on
    a local directory, or on ``storage`` at ``endpoint``; sealed or not."""
    sealing = {"GENOMENODE_ENCRYPT_AT_REST": "true" if sealed else "false"}
    with _environment(sealing), in_process_workers():
        node = init_node(
            directory,
            node_id="fi-node",
            country="FI",
            storage=storage,
            storage_endpoint=endpoint,
        )
        for dataset_yaml in dataset_yamls:
            ingest(node, dataset_yaml)
    return node


def node_pair(
    root: pathlib.Path,
    dataset_yamls: Sequence[pathlib.Path],
    *,
    s3: S3Service,
    prefix: str,
    granted: Sequence[str],
    researcher: str,
) -> dict[str, Node]:
    """The same datasets on a local node (``"local"``) and on a sealed node in the
    bucket under ``prefix`` (``"s3"``), ``researcher`` granted ``granted`` on both."""
    pair = {
        "local": ingested_node(root / "local", dataset_yamls),
        "s3": ingested_node(
            root / "s3",
            dataset_yamls,
            sealed=True,
            storage=f"s3://{BUCKET}/{prefix}",
            endpoint=s3.endpoint,
        ),
    }
    for node in pair.values():
        for dataset_id in granted:
            grant_access(node, dataset_id, researcher)
    return pair


@contextlib.contextmanager
def pair_clients(pair: dict[str, Node]) -> Iterator[dict[str, TestClient]]:
    """In-process clients of both nodes' apps (the development identity provider
    on, for passports), by the same names."""
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(
                TestClient(
                    create_app(
                        node, base_url="http://testserver", dev_identity_provider=True
                    )
                )
            )
            for name, node in pair.items()
        }


def bearer(client: TestClient, subject: str) -> dict[str, str]:
    """An Authorization header with a development passport for ``subject``."""
    token = client.post("/dev-idp/token", json={"subject": subject}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}
