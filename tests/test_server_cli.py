"""`diffusiond` commands that do not serve: db upgrade/current, build-demo, flags over settings."""

from pathlib import Path

import pytest

from diffusiond.server.catalog.schemas import DEMO_MODEL_NAME
from diffusiond.server.cli import build_parser, main, settings_from


def test_db_upgrade_and_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	main(['db', 'current', '--data-dir', str(tmp_path)])
	assert capsys.readouterr().out.strip().endswith('revision none')
	main(['db', 'upgrade', '--data-dir', str(tmp_path)])
	assert capsys.readouterr().out.strip().endswith('revision 0017')
	url = f'sqlite+aiosqlite:///{tmp_path / "other.db"}'
	main(['db', 'upgrade', '--database-url', url])
	assert 'other.db: revision 0017' in capsys.readouterr().out
	assert (tmp_path / 'other.db').exists()


def test_build_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	main(['build-demo', '--data-dir', str(tmp_path)])
	assert 'random weights' in capsys.readouterr().out
	assert (tmp_path / 'models' / DEMO_MODEL_NAME / 'model_index.json').is_file()


def test_flags_override_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv('DIFFUSIOND_SERVER__PORT', '6000')
	monkeypatch.setenv('DIFFUSIOND_LIMITS__MAX_QUEUE', '3')
	args = build_parser().parse_args(
		['serve', '--host', '0.0.0.0', '--device', 'cpu', '--default-model', 'sd15', '--data-dir', str(tmp_path)]
	)
	settings = settings_from(args)
	assert (settings.server.host, settings.server.port) == ('0.0.0.0', 6000)  # unset flags keep the environment
	assert (settings.device.device, settings.models.default_model, settings.limits.max_queue) == ('cpu', 'sd15', 3)
	assert settings.storage.data_dir == tmp_path.resolve()


def test_access_flags_and_a_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv('DIFFUSIOND_SECURITY__TOKEN', 'from-env')
	socket = tmp_path / 'run' / 'd.sock'
	args = build_parser().parse_args(['serve', '--socket', str(socket), '--no-tcp', '--data-dir', str(tmp_path)])
	settings = settings_from(args)
	assert (settings.server.socket, settings.server.tcp) == (socket, False)
	assert settings.security.api_token() == 'from-env'
	assert 'from-env' not in repr(settings), 'the token never shows in logs or reprs'


def test_a_startup_error_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	with pytest.raises(SystemExit) as caught:
		main(['serve', '--data-dir', str(tmp_path), '--tls-cert', str(tmp_path / 'missing.pem'), '--tls-key', 'k'])
	assert caught.value.code == 1
	assert 'cannot read the TLS key' in capsys.readouterr().err
