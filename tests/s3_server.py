"""A real S3-compatible server for the outputs store tests: moto's server mode (HTTP, on 127.0.0.1, a free port) in a
thread of the test process, started once per run and stopped by it. Each test gets a bucket of its own."""

import logging
import uuid
from collections.abc import Generator

import boto3
import pytest
from moto.server import ThreadedMotoServer

CREDENTIALS = {'AWS_ACCESS_KEY_ID': 'diffusiond-test', 'AWS_SECRET_ACCESS_KEY': 'diffusiond-test-secret'}
REGION = 'us-east-1'


def s3_server() -> Generator[str, None, None]:
	"""The endpoint URL of a running server, for as long as the generator is open."""
	logging.getLogger('werkzeug').setLevel(logging.ERROR)  # one access-log line per request otherwise
	server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
	server.start()
	try:
		host, port = server.get_host_and_port()
		yield f'http://{host}:{port}'
	finally:
		server.stop()


def new_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
	"""A fresh bucket; the credentials go where boto3 reads them (the environment), as a deployment sets them."""
	for name, value in CREDENTIALS.items():
		monkeypatch.setenv(name, value)
	monkeypatch.setenv('AWS_DEFAULT_REGION', REGION)
	bucket = f'outputs-{uuid.uuid4().hex[:12]}'
	boto3.client('s3', endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=bucket)
	return bucket


def objects(endpoint: str, bucket: str) -> dict[str, bytes]:
	"""Every object in the bucket: key → bytes."""
	client = boto3.client('s3', endpoint_url=endpoint, region_name=REGION)
	listed = client.list_objects_v2(Bucket=bucket).get('Contents', [])
	return {str(item['Key']): client.get_object(Bucket=bucket, Key=item['Key'])['Body'].read() for item in listed}
