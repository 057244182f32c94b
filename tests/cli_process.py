"""`diffusionctl` as a real child process, for the tests of what a person sees: exit codes, one-line errors."""

import asyncio
import os
import sys
from pathlib import Path

from pydantic import BaseModel


class Ran(BaseModel):
	code: int
	out: str
	err: str


def command(address: str, *argv: str) -> list[str]:
	return [sys.executable, '-m', 'diffusiond.client.cli', '--address', address, *argv]


async def run_cli(address: str, *argv: str, cwd: Path | None = None, closed_stdout: bool = False) -> Ran:
	"""Runs the CLI to its end; `closed_stdout`: its standard output is a pipe nobody reads (`| head -0`)."""
	if closed_stdout:
		read, write = os.pipe()
		os.close(read)
		try:
			process = await asyncio.create_subprocess_exec(
				*command(address, *argv), stdout=write, stderr=asyncio.subprocess.PIPE, cwd=cwd
			)
		finally:
			os.close(write)
		_, err = await asyncio.wait_for(process.communicate(), 60)
		return Ran(code=process.returncode or 0, out='', err=err.decode())
	process = await asyncio.create_subprocess_exec(
		*command(address, *argv), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
	)
	out, err = await asyncio.wait_for(process.communicate(), 60)
	return Ran(code=process.returncode or 0, out=out.decode(), err=err.decode())


def clean(ran: Ran) -> bool:
	"""No Python traceback or interpreter complaint reached the user."""
	return 'Traceback' not in ran.err and 'Exception ignored' not in ran.err and 'Error:' not in ran.err
