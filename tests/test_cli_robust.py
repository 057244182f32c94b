"""`diffusionctl` as a person meets it, as a real process: missing inputs, missing output folders, files in
the way, a closed pipe and Ctrl-C all end with one line and a documented exit code, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pty
import signal
import socket
from pathlib import Path

import pytest
from PIL import Image

from diffusiond.client.cli import INTERRUPTED, PIPE_CLOSED
from diffusiond.client.cli_args import build_parser
from diffusiond.client.cli_examples import leaves
from diffusiond.server.app import Daemon
from diffusiond.server.records import HistoryFilter
from diffusiond.server.schemas import JobState
from tests.cli_process import clean, command, run_cli
from tests.conftest import FAKE_MODEL, StartDaemon
from tests.fakes import FakeEngine
from tests.lora_files import write_tiny_lora


@pytest.fixture
async def fake(start_fake: StartDaemon) -> Daemon:
	return await start_fake(FakeEngine(step_s=0.05))


def _address(daemon: Daemon) -> str:
	return f'127.0.0.1:{daemon.port}'


async def _records(daemon: Daemon) -> int:
	return len(await daemon.history.page(HistoryFilter(), None, 100))


@pytest.mark.parametrize(
	('argv', 'words'),
	[
		(['generate', 'x', '--init-image', '/nonexistent.png'], 'cannot read --init-image /nonexistent.png'),
		(['generate', 'x', '--init-image', 'in.png', '--mask', '/nonexistent.png'], 'cannot read --mask'),
		(['styles', 'import', 'missing.csv'], 'cannot read the styles file missing.csv'),
		(['history', 'import', 'missing.zip'], 'cannot read the archive missing.zip'),
		(['generate', 'x', '-o', 'fox.gif'], 'writes PNG, JPEG or WebP'),
		(['generate', 'x', '-o', 'fox.png', '--format', 'webp'], 'make them agree'),
		(['generate', 'x', '-o', 'taken.png'], 'taken.png exists; pass --overwrite'),
	],
)
async def test_local_file_problems_exit_2_before_any_work(
	fake: Daemon, tmp_path: Path, argv: list[str], words: str
) -> None:
	buffer = io.BytesIO()
	Image.new('RGB', (64, 64)).save(buffer, format='PNG')
	(tmp_path / 'in.png').write_bytes(buffer.getvalue())
	(tmp_path / 'taken.png').write_bytes(b'mine')
	ran = await run_cli(_address(fake), *argv, cwd=tmp_path)
	assert (ran.code, clean(ran)) == (2, True), ran.err
	assert words in ran.err
	assert await _records(fake) == 0, 'nothing ran'
	assert (tmp_path / 'taken.png').read_bytes() == b'mine'


async def test_output_folders_are_created_and_files_kept_unless_overwrite(fake: Daemon, tmp_path: Path) -> None:
	address = _address(fake)
	first = await run_cli(address, 'generate', 'x', '-o', 'out/deep/fox.png', '--steps', '1', '--json', cwd=tmp_path)
	assert (first.code, clean(first)) == (0, True), first.err
	line = json.loads(first.out.splitlines()[0])
	assert line['path'] == 'out/deep/fox.png'
	assert line['job_id'], 'generate --json names the job'
	job = line['job_id']
	again = await run_cli(
		address, 'generate', 'x', '-o', 'out/deep/fox.png', '--overwrite', '--steps', '1', cwd=tmp_path
	)
	assert again.code == 0
	for argv in (
		['history', 'image', job[:8], '-o', 'a/b/image.png'],
		['history', 'regenerate', job, '-o', 'c/again.png'],
		['history', 'export', 'd/backup.zip', '--images'],
		['styles', 'export', '-o', 'e/styles.csv'],
	):
		ran = await run_cli(address, *argv, cwd=tmp_path)
		assert (ran.code, clean(ran)) == (0, True), (argv, ran.err)
		refused = await run_cli(address, *argv, cwd=tmp_path)
		assert (refused.code, 'exists; pass --overwrite' in refused.err) == (2, True), argv
	for made in ('a/b/image.png', 'c/again.png', 'd/backup.zip', 'e/styles.csv'):
		assert (tmp_path / made).stat().st_size > 0


@pytest.mark.parametrize(
	'argv',
	[
		['models', 'list'],
		['loras', 'list'],
		['styles', 'list'],
		['history', 'list'],
		['info'],
		['--json', 'info'],
		['styles', 'export'],
		['history', 'usage'],
		['models', 'show', FAKE_MODEL],
	],
)
async def test_a_closed_pipe_ends_quietly(fake: Daemon, tmp_path: Path, argv: list[str]) -> None:
	write_tiny_lora(fake.settings.storage.loras_dir / 'ink.safetensors')
	await fake.loras.refresh()
	made = await run_cli(_address(fake), 'generate', 'x', '--steps', '1', cwd=tmp_path)
	assert made.code == 0
	ran = await run_cli(_address(fake), *argv, closed_stdout=True)
	assert (ran.code, clean(ran)) == (PIPE_CLOSED, True), ran.err
	assert ran.err == ''


def _ctrl_c_enabled() -> None:
	"""SIGINT as a terminal delivers it: a test run started in the background (nohup, CI runners) ignores SIGINT,
	and a child inherits that, so Ctrl-C would never reach it."""
	signal.signal(signal.SIGINT, signal.SIG_DFL)


async def _interrupt(daemon: Daemon, tmp_path: Path, *argv: str) -> tuple[int, str]:
	"""Starts the CLI, waits until it shows its job started, sends SIGINT (Ctrl-C); the exit code and its stderr."""
	process = await asyncio.create_subprocess_exec(
		*command(_address(daemon), *argv),
		stdout=asyncio.subprocess.PIPE,
		stderr=asyncio.subprocess.PIPE,
		cwd=tmp_path,
		preexec_fn=_ctrl_c_enabled,
	)
	assert process.stderr is not None
	first = await asyncio.wait_for(process.stderr.readline(), 60)  # "job … on <model>, seeds …"
	assert first.startswith(b'job '), first
	process.send_signal(signal.SIGINT)
	_, err = await asyncio.wait_for(process.communicate(), 30)
	return process.returncode or 0, first.decode() + err.decode()


async def test_ctrl_c_cancels_the_job_and_exits_130(fake: Daemon, tmp_path: Path) -> None:
	code, err = await _interrupt(fake, tmp_path, 'generate', 'x', '--steps', '150', '-o', 'fox.png')
	assert code == INTERRUPTED
	assert 'Traceback' not in err
	assert 'was cancelled' in err.splitlines()[-1]
	job_id = err.split()[1]
	for _ in range(200):  # its end is stored in the transaction that removes its record (jobs/recorder.py)
		stored = await fake.jobs.get(job_id)
		if stored is not None and stored.state is JobState.CANCELLED:
			break
		await asyncio.sleep(0.05)
	assert fake.manager.queue.snapshot() == [], 'the job did not run on for nobody'
	assert stored is not None
	assert stored.state is JobState.CANCELLED
	assert await _records(fake) == 0
	assert not (tmp_path / 'fox.png').exists()


async def test_ctrl_c_with_keep_running_leaves_the_job_going(fake: Daemon, tmp_path: Path) -> None:
	code, err = await _interrupt(fake, tmp_path, 'generate', 'x', '--steps', '20', '--keep-running')
	assert code == INTERRUPTED
	assert 'goes on' in err
	for _ in range(200):
		if await _records(fake):
			break
		await asyncio.sleep(0.05)
	assert await _records(fake) == 1, 'the job finished and is in history'


async def test_a_watch_interrupted_never_touches_the_job(fake: Daemon, tmp_path: Path) -> None:
	running = asyncio.create_task(
		run_cli(_address(fake), 'generate', 'x', '--steps', '40', '-o', 'g.png', cwd=tmp_path)
	)
	for _ in range(300):
		jobs = fake.manager.queue.snapshot()
		if jobs and jobs[0].state.value == 'running':
			break
		await asyncio.sleep(0.05)
	code, err = await _interrupt(fake, tmp_path, 'jobs', 'watch', jobs[0].job_id, '-o', 'w.png')
	generated = await running
	assert code == INTERRUPTED
	assert 'Traceback' not in err
	assert generated.code == 0, 'the job itself went on'


async def test_a_cancelled_job_has_its_own_exit_code(fake: Daemon, tmp_path: Path) -> None:
	task = asyncio.create_task(run_cli(_address(fake), 'generate', 'x', '--steps', '150', cwd=tmp_path))
	for _ in range(300):
		if fake.manager.queue.snapshot():
			break
		await asyncio.sleep(0.05)
	cancelled = await run_cli(_address(fake), 'jobs', 'cancel', fake.manager.queue.snapshot()[0].job_id)
	ran = await task
	assert cancelled.code == 0
	assert (ran.code, clean(ran)) == (6, True)
	assert 'CANCELLED' in ran.err


async def test_a_download_whose_source_is_gone_is_no_unreachable_daemon(fake: Daemon) -> None:
	closed = socket.socket()
	closed.bind(('127.0.0.1', 0))
	port = closed.getsockname()[1]
	closed.close()  # nothing listens there
	ran = await run_cli(_address(fake), 'models', 'download', f'http://127.0.0.1:{port}/model.safetensors')
	assert (ran.code, clean(ran)) == (1, True), ran.err
	assert 'DOWNLOAD_INTERRUPTED' in ran.err
	assert 'is diffusiond running' not in ran.err
	assert 'resume' not in ran.err, 'nothing was kept, so nothing resumes'


async def test_history_list_pages_and_says_when_there_is_more(fake: Daemon, tmp_path: Path) -> None:
	for _ in range(3):
		await run_cli(_address(fake), 'generate', 'x', '--steps', '1', '-o', f'{os.urandom(4).hex()}.png', cwd=tmp_path)
	limited = await run_cli(_address(fake), 'history', 'list', '--limit', '2')
	everything = await run_cli(_address(fake), 'history', 'list', '--all', '--json')
	assert len(limited.out.splitlines()) == 2
	assert 'more with --limit N or --all' in limited.err
	assert len(everything.out.splitlines()) == 3
	assert everything.err == ''


async def test_empty_listings_say_so_on_a_terminal(fake: Daemon) -> None:
	"""On a pseudo-terminal an empty list says so; a pipe gets nothing."""
	main, child = pty.openpty()
	try:
		process = await asyncio.create_subprocess_exec(
			*command(_address(fake), 'history', 'list'), stdout=child, stderr=asyncio.subprocess.PIPE
		)
		await asyncio.wait_for(process.wait(), 60)
		shown = os.read(main, 1000).decode()
	finally:
		os.close(child)
		os.close(main)
	piped = await run_cli(_address(fake), 'history', 'list')
	assert process.returncode == 0
	assert 'no generations match' in shown
	assert piped.out == ''


async def test_version_and_json_after_the_command(fake: Daemon) -> None:
	version = await run_cli(_address(fake), '--version')
	after = await run_cli(_address(fake), 'models', 'list', '--json')
	assert version.code == 0
	assert version.out.startswith('diffusionctl ')
	assert json.loads(after.out.splitlines()[0])['name'] == FAKE_MODEL


def test_every_option_of_every_command_has_help() -> None:
	parser = build_parser()
	missing = [
		f'{name} {action.option_strings or action.dest}'
		for name, child in [('', parser), *leaves(parser)]
		for action in child._actions
		if not action.help and not isinstance(action, argparse._SubParsersAction)
	]
	assert missing == []
