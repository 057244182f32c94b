"""`diffusiond`: the daemon's command line (serve, build-demo)."""

import argparse
import asyncio
import logging
from pathlib import Path

from diffusiond.server import __version__
from diffusiond.server.app import serve
from diffusiond.server.pipeline.demo import DEMO_MODEL_NAME, build_demo_model
from diffusiond.server.settings import Settings


def _parser() -> argparse.ArgumentParser:
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
	run.add_argument('--log-level', choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])
	demo = commands.add_parser('build-demo', help='build the tiny random demo model into the models folder')
	demo.add_argument('--data-dir', type=Path, help='data folder (DIFFUSIOND_STORAGE__DATA_DIR)')
	return parser


def settings_from(args: argparse.Namespace) -> Settings:
	settings = Settings()
	overrides = {
		'server': {
			'host': getattr(args, 'host', None),
			'port': getattr(args, 'port', None),
			'port_file': getattr(args, 'port_file', None),
		},
		'storage': {'data_dir': args.data_dir},
		'device': {'device': getattr(args, 'device', None)},
		'models': {'default_model': getattr(args, 'default_model', None)},
	}
	data = settings.model_dump()
	for group, values in overrides.items():
		data[group].update({key: value for key, value in values.items() if value is not None})
	if getattr(args, 'log_level', None):
		data['log_level'] = args.log_level
	return Settings.model_validate(data)


def main(argv: list[str] | None = None) -> None:
	args = _parser().parse_args(argv)
	settings = settings_from(args)
	logging.basicConfig(level=settings.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
	if args.command == 'build-demo':
		path = build_demo_model(settings.storage.models_dir / DEMO_MODEL_NAME)
		print(f'demo model (random weights, produces noise) at {path}')
		return
	asyncio.run(serve(settings))


if __name__ == '__main__':
	main()
