"""`diffusionctl`: the command-line client. It never shows a Python traceback: every way a command can end
has an exit code and one line that says what happened.

Exit codes: 0 ok, 1 the daemon answered with an error (not one below), 2 usage, an invalid argument or a
problem with a local file, 3 not found, 4 the daemon is unreachable, shutting down or slower than
--timeout, 5 a missing or wrong token, 6 the job was cancelled, 130 interrupted (Ctrl-C), 141 the output
pipe was closed (`| head`).
"""

import argparse
import os
import sys
from collections.abc import Callable

import grpc

from diffusiond.client.cli_args import build_parser, tls_from
from diffusiond.client.cli_assets import assets_command, upscale_command, upscalers_command
from diffusiond.client.cli_files import LocalFileError
from diffusiond.client.cli_generate import generate, info, jobs, png_info
from diffusiond.client.cli_history import history_command
from diffusiond.client.cli_loras import loras_command
from diffusiond.client.cli_models import models_command
from diffusiond.client.cli_styles import styles_command
from diffusiond.client.errors import DiffusiondError
from diffusiond.client.sync import Client

EXIT_CODES = {
	grpc.StatusCode.INVALID_ARGUMENT: 2,
	grpc.StatusCode.NOT_FOUND: 3,
	grpc.StatusCode.UNAVAILABLE: 4,
	grpc.StatusCode.DEADLINE_EXCEEDED: 4,  # unreachable (reads retry until the deadline) or too slow
	grpc.StatusCode.UNAUTHENTICATED: 5,
	grpc.StatusCode.CANCELLED: 6,
}
INTERRUPTED = 130
PIPE_CLOSED = 141
_DAEMON_GONE = ('', 'SHUTTING_DOWN')  # UNAVAILABLE reasons that are about the daemon itself

_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
	'generate': generate,
	'info': info,
	'png-info': png_info,
	'embeddings': assets_command,
	'vaes': assets_command,
	'controlnets': assets_command,
	'upscalers': upscalers_command,
	'upscale': upscale_command,
	'jobs': jobs,
	'models': models_command,
	'loras': loras_command,
	'styles': styles_command,
	'history': history_command,
}


def _failed(error: DiffusiondError, address: str | None) -> int:
	reason = f' ({error.reason})' if error.reason else ''
	print(f'error: {error.code.name}{reason}: {error.message}', file=sys.stderr)
	unreachable = error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
	if unreachable and not error.reason:  # no answer of the daemon: the transport failed
		print(f'is diffusiond running at {address or "$DIFFUSIOND_ADDRESS / localhost:50051"}?', file=sys.stderr)
	if error.code is grpc.StatusCode.UNAVAILABLE and error.reason not in _DAEMON_GONE:
		return 1  # the daemon answered: something it depends on failed (a download server, say)
	return EXIT_CODES.get(error.code, 1)


def _interrupted(args: argparse.Namespace) -> int:
	follow = getattr(args, 'follow', None)
	job = f' job {follow.job_id}' if follow is not None and follow.job_id else ' the job'
	if getattr(args, 'keep_running', False):
		print(f'interrupted; {job.strip()} goes on (diffusionctl jobs watch)', file=sys.stderr)
	elif follow is not None:
		print(f'interrupted;{job} was cancelled', file=sys.stderr)
	else:
		print('interrupted', file=sys.stderr)
	return INTERRUPTED


def _pipe_closed() -> int:
	"""The reader went away (`| head`): stop quietly, and keep Python from complaining at exit."""
	devnull = os.open(os.devnull, os.O_WRONLY)
	os.dup2(devnull, sys.stdout.fileno())
	return PIPE_CLOSED


def main(argv: list[str] | None = None) -> int:
	args = build_parser().parse_args(argv)
	try:
		with Client(args.address, timeout=args.timeout, token=args.token, tls=tls_from(args)) as client:
			code = _COMMANDS[args.command](client, args)
		sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
		return code
	except KeyboardInterrupt:
		return _interrupted(args)
	except BrokenPipeError:
		return _pipe_closed()
	except LocalFileError as error:
		print(f'error: {error}', file=sys.stderr)
		return 2
	except DiffusiondError as error:
		return _failed(error, args.address)
	except ValueError as error:
		print(f'error: {error}', file=sys.stderr)
		return 2


if __name__ == '__main__':
	sys.exit(main())
