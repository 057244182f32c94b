"""Every diffusionctl command shows an example in --help, and every example parses as written."""

import shlex

import pytest

from diffusiond.client.cli_args import build_parser
from diffusiond.client.cli_examples import EXAMPLES, leaves


def test_every_command_has_an_example() -> None:
	commands = {command for command, _ in leaves(build_parser())}
	assert commands == set(EXAMPLES), f'missing: {commands - set(EXAMPLES)}, stale: {set(EXAMPLES) - commands}'


@pytest.mark.parametrize('command', sorted(EXAMPLES))
def test_the_example_parses_and_is_in_the_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
	argv = shlex.split(EXAMPLES[command])[1:]
	args = build_parser().parse_args(argv)
	assert args.command == command.split()[0]
	with pytest.raises(SystemExit) as done:
		build_parser().parse_args([*command.split(), '--help'])
	assert done.value.code == 0
	assert f'example: {EXAMPLES[command]}' in capsys.readouterr().out
