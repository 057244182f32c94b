"""One example per `diffusionctl` command, shown by its --help (a test checks that every command has one)."""

import argparse

EXAMPLES = {
	'generate': 'diffusionctl generate "a red fox" -o fox.png --seed 7 --lora detail:0.8 --init-image sketch.png --strength 0.6',
	'info': 'diffusionctl info',
	'png-info': 'diffusionctl png-info 00012-1234.png',
	'embeddings': 'diffusionctl embeddings --base sd1',
	'vaes': 'diffusionctl --json vaes',
	'controlnets': 'diffusionctl controlnets --base sd1',
	'upscalers': 'diffusionctl upscalers',
	'upscale': 'diffusionctl upscale photo.png -o big.png --scale 2 --upscaler RealESRGAN_x4plus',
	'jobs list': 'diffusionctl --json jobs list',
	'jobs cancel': 'diffusionctl jobs cancel 3f0c…',
	'jobs clear': 'diffusionctl jobs clear',
	'jobs watch': 'diffusionctl jobs watch 3f0c… -o fox.png',
	'models list': 'diffusionctl models list --base sdxl --order last-used',
	'models show': 'diffusionctl models show 0123abcd45',
	'models load': 'diffusionctl models load sd15/dreamshaper_8',
	'models unload': 'diffusionctl models unload sd15/dreamshaper_8',
	'models refresh': 'diffusionctl models refresh --restore',
	'models download': 'diffusionctl models download https://example.com/model.safetensors --sha256 HEX',
	'models update': 'diffusionctl models update dream --display-name Dream --tags portrait --steps 25 --cfg 6',
	'models delete': 'diffusionctl models delete dream --files',
	'loras list': 'diffusionctl loras list --base sd1 --query ink',
	'loras show': 'diffusionctl loras show detail',
	'loras update': 'diffusionctl loras update detail --triggers "detailed, intricate" --weight 0.7',
	'loras enable': 'diffusionctl loras enable detail ink',
	'loras disable': 'diffusionctl loras disable detail',
	'loras delete': 'diffusionctl loras delete old-lora --files',
	'loras refresh': 'diffusionctl loras refresh',
	'loras suggest': 'diffusionctl loras suggest "pixel art of a knight" --model sd15 --apply',
	'loras similar': 'diffusionctl loras similar styles/watercolor --limit 5',
	'styles list': 'diffusionctl styles list --query ink',
	'styles show': 'diffusionctl styles show Photographic',
	'styles add': 'diffusionctl styles add Ink --prompt "ink drawing of {prompt}" --negative color',
	'styles update': 'diffusionctl styles update Ink --prompt "sumi-e ink drawing of {prompt}"',
	'styles rm': 'diffusionctl styles rm Ink',
	'styles import': 'diffusionctl styles import styles.csv --overwrite',
	'styles export': 'diffusionctl styles export -o styles.csv',
	'history list': 'diffusionctl history list -q fox --favourites -n 50',
	'history show': 'diffusionctl history show 3f0c…',
	'history rm': 'diffusionctl history rm 3f0c…',
	'history update': 'diffusionctl history update 3f0c… --favourite --tags best,fox --note "print this"',
	'history image': 'diffusionctl history image 3f0c… --index 1 --thumbnail 256 -o thumb.jpg',
	'history usage': 'diffusionctl --json history usage',
	'history regenerate': 'diffusionctl history regenerate 3f0c… -o again.png',
	'history export': 'diffusionctl history export backup.zip --images',
	'history import': 'diffusionctl history import backup.zip',
}


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, argparse.ArgumentParser]]:
	"""Every command that runs something, as ('models list', its parser)."""
	found: list[tuple[str, argparse.ArgumentParser]] = []
	groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
	for group in groups:
		for name, child in group.choices.items():
			found += leaves(child, (*path, name))
	return found or [(' '.join(path), parser)]


def add_examples(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
	for command, child in leaves(parser):
		if command in EXAMPLES:
			child.epilog = f'example: {EXAMPLES[command]}'
			child.formatter_class = argparse.RawDescriptionHelpFormatter  # the example on one line, as typed
	return parser
