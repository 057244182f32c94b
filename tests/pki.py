"""A CA, a server certificate for localhost/127.0.0.1 and a client certificate (trustme), as PEM files."""

from pathlib import Path

import pytest
import trustme


@pytest.fixture(scope='module')
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
	"""A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files."""
	folder = tmp_path_factory.mktemp('pki')
	ca = trustme.CA()
	server = ca.issue_cert('localhost', '127.0.0.1')
	client = ca.issue_cert('client@diffusiond.test')
	paths = {name: folder / f'{name}.pem' for name in ('ca', 'cert', 'key', 'client_cert', 'client_key')}
	ca.cert_pem.write_to_path(str(paths['ca']))
	paths['cert'].write_bytes(b''.join(blob.bytes() for blob in server.cert_chain_pems))
	server.private_key_pem.write_to_path(str(paths['key']))
	paths['client_cert'].write_bytes(b''.join(blob.bytes() for blob in client.cert_chain_pems))
	client.private_key_pem.write_to_path(str(paths['client_key']))
	return paths
