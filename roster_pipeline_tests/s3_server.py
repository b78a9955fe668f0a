"""A real S3-compatible server for tests: moto's, over HTTP on loopback, checking every request's signature against
an IAM user's key; and a bucket only that user may use, with the environment a worker sharing it would have."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

BUCKET = "district-rosters"
S3_ANYTHING = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'


@dataclass(frozen=True)
class Bucket:
    """The roster's bucket, and the IAM user's credentials the environment holds for it."""

    s3: Any
    endpoint_url: str
    key_id: str
    secret: str

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def parquet_files(self, prefix: str = "roster/") -> list[str]:
        return [key for key in self.keys(prefix) if key.endswith(".parquet")]


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port; its accounts are emptied and it stops after the test."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        httpx.post(f"{url}/moto-api/reset-auth", content=b"inf")
        httpx.post(f"{url}/moto-api/reset")
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A bucket only an IAM user's key may use, and the environment a worker sharing it would have."""
    anyone = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    anyone |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", **anyone)
    iam.create_user(UserName="roster-publisher")
    iam.put_user_policy(UserName="roster-publisher", PolicyName="roster-files", PolicyDocument=S3_ANYTHING)
    key = iam.create_access_key(UserName="roster-publisher")["AccessKey"]
    boto3.client("s3", **anyone).create_bucket(Bucket=BUCKET)
    httpx.post(f"{s3_endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # signatures checked from now
    credentials = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **credentials)
    monkeypatch.delenv("ROSTER_CATALOG_URL", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("ROSTER_FILES_URL", f"s3://{BUCKET}/roster/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return Bucket(s3, s3_endpoint, key["AccessKeyId"], key["SecretAccessKey"])
