"""`diffusiond`: the daemon's command line (serve, build-demo, db upgrade|current)."""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from diffusiond.server import __version__
from diffusiond.server.app import serve
from diffusiond.server.catalog.schemas import DEMO_MODEL_NAME
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.listen import StartupError
from diffusiond.server.settings import Settings
from diffusiond.server.store import Database, default_url


def build_parser() -> argparse.ArgumentParser:
	parser = argparse.ArgumentParser(
		prog='diffusiond',
		description='Stable Diffusion over gRPC. Every option is also a DIFFUSIOND_* environment variable.',
	)
	parser.add_argument('--version', action='version', version=f'diffusiond {__version__}')
	commands = parser.add_subparsers(dest='command', required=True)
	run = commands.add_parser('serve', help='run the daemon', epilog='example: diffusiond serve --port 50051')
	run.add_argument('--host', help='bind address (DIFFUSIOND_SERVER__HOST, default 127.0.0.1)')
	run.add_argument('--port', type=int, help='TCP port, 0 = any free one (DIFFUSIOND_SERVER__PORT, default 50051)')
	run.add_argument('--data-dir', type=Path, help='data folder (DIFFUSIOND_STORAGE__DATA_DIR)')
	run.add_argument('--device', choices=['auto', 'cuda', 'mps', 'cpu'], help='DIFFUSIOND_DEVICE__DEVICE')
	run.add_argument('--default-model', help='default model name (DIFFUSIOND_MODELS__DEFAULT_MODEL)')
	run.add_argument('--port-file', type=Path, help='write the bound port here once listening (for --port 0)')
	run.add_argument('--socket', type=Path, help='also listen on this Unix socket (DIFFUSIOND_SERVER__SOCKET)')
	run.add_argument('--no-tcp', dest='tcp', action='store_false', default=None, help='listen only on --socket')
	run.add_argument('--token-file', type=Path, help='require this API token (DIFFUSIOND_SECURITY__TOKEN[_FILE])')
	run.add_argument('--tls-cert', type=Path, help='PEM certificate: serve TLS (DIFFUSIOND_SECURITY__TLS_CERT)')
	run.add_argument('--tls-key', type=Path, help='PEM key of --tls-cert (DIFFUSIOND_SECURITY__TLS_KEY)')
	run.add_argument('--tls-client-ca', type=Path, help='require client certificates signed by this CA')
	run.add_argument(
		'--http-port', type=int, help='also serve the A1111 and OpenAI HTTP APIs here (DIFFUSIOND_HTTP__PORT)'
	)
	run.add_argument('--log-level', choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])
	demo = commands.add_parser('build-demo', help='build the tiny random demo model into the models folder')
	demo.add_argument('--data-dir', type=Path, help='data folder (DIFFUSIOND_STORAGE__DATA_DIR)')
	db = commands.add_parser('db', help='database maintenance (the daemon also migrates at start-up)')
	actions = db.add_subparsers(dest='db_command', required=True)
	for name, text in (('upgrade', 'apply every pending migration'), ('current', 'print the applied revision')):
		action = actions.add_parser(name, help=text)
		action.add_argument('--data-dir', type=Path, help='data folder (DIFFUSIOND_STORAGE__DATA_DIR)')
		action.add_argument('--database-url', help='SQLAlchemy async URL (DIFFUSIOND_STORAGE__DATABASE_URL)')
	return parser


def settings_from(args: argparse.Namespace) -> Settings:
	settings = Settings()
	overrides = {
		'server': {
			'host': getattr(args, 'host', None),
			'port': getattr(args, 'port', None),
			'port_file': getattr(args, 'port_file', None),
			'socket': getattr(args, 'socket', None),
			'tcp': getattr(args, 'tcp', None),
		},
		'security': {
			'token_file': getattr(args, 'token_file', None),
			'tls_cert': getattr(args, 'tls_cert', None),
			'tls_key': getattr(args, 'tls_key', None),
			'tls_client_ca': getattr(args, 'tls_client_ca', None),
		},
		'storage': {'data_dir': args.data_dir, 'database_url': getattr(args, 'database_url', None)},
		'device': {'device': getattr(args, 'device', None)},
		'models': {'default_model': getattr(args, 'default_model', None)},
		'http': {'port': getattr(args, 'http_port', None)},
	}
	data = settings.model_dump()
	for group, values in overrides.items():
		data[group].update({key: value for key, value in values.items() if value is not None})
	if getattr(args, 'log_level', None):
		data['log_level'] = args.log_level
	return Settings.model_validate(data)


async def _database(settings: Settings, action: str) -> str:
	storage = settings.storage
	database = Database(storage.database_url or default_url(storage.data_dir))
	try:
		if action == 'upgrade':
			await database.upgrade()
		return f'{database.engine.url.render_as_string(hide_password=True)}: revision {await database.revision() or "none"}'
	finally:
		await database.close()


def main(argv: list[str] | None = None) -> None:
	args = build_parser().parse_args(argv)
	settings = settings_from(args)
	logging.basicConfig(level=settings.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
	if args.command == 'build-demo':
		path = build_demo_model(settings.storage.models_dir / DEMO_MODEL_NAME)
		print(f'demo model (random weights, produces noise) at {path}')
		return
	if args.command == 'db':
		print(asyncio.run(_database(settings, args.db_command)))
		return
	try:
		asyncio.run(serve(settings))
	except StartupError as error:
		print(f'diffusiond: {error}', file=sys.stderr)
		raise SystemExit(1) from None


if __name__ == '__main__':
	main()
