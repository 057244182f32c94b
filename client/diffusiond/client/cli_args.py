"""The argument parser of `diffusionctl`."""

import argparse
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from diffusiond.client.cli_examples import add_examples, leaves
from diffusiond.client.cli_history import add_history_commands
from diffusiond.client.cli_loras import add_lora_commands
from diffusiond.client.cli_models import add_model_commands
from diffusiond.client.cli_styles import add_style_commands
from diffusiond.client.connection import TOKEN_ENV, Tls
from diffusiond.client.request import ADDRESS_ENV, DEFAULT_ADDRESS, sampler_names, schedule_names


def _refiner(text: str) -> tuple[str, float]:
	name, _, switch = text.partition(':')
	try:
		return name, float(switch) if switch else 0.8
	except ValueError:
		raise argparse.ArgumentTypeError(f'NAME[:SWITCH_AT] with SWITCH_AT a number, got {text!r}') from None


def _size(text: str) -> tuple[int, int]:
	width, sep, height = text.lower().partition('x')
	if not sep or not width.isdigit() or not height.isdigit():
		raise argparse.ArgumentTypeError(f'size must look like 512x512, got {text!r}')
	return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
	parser = argparse.ArgumentParser(prog='diffusionctl', description='Command-line client for the diffusiond daemon.')
	parser.add_argument(
		'--address',
		help=f'host:port, unix:PATH, several daemons as host:port,host:port or dns:///name:port (calls spread '
		f'round-robin) (${ADDRESS_ENV}, default {DEFAULT_ADDRESS})',
	)
	parser.add_argument('--timeout', type=float, help='deadline per call in seconds')
	parser.add_argument('--token', help=f'API token, when the daemon requires one (${TOKEN_ENV})')
	parser.add_argument('--tls', action='store_true', help='connect with TLS, trusting the system roots')
	parser.add_argument('--tls-ca', type=Path, help='connect with TLS, trusting this PEM CA bundle')
	parser.add_argument('--tls-cert', type=Path, help='PEM client certificate (mutual TLS), with --tls-key')
	parser.add_argument('--tls-key', type=Path, help='PEM private key of --tls-cert')
	parser.add_argument('--tls-server-name', help="the name the daemon's certificate carries, if not the address")
	parser.add_argument('--json', action='store_true', help=JSON_HELP)
	parser.add_argument('--version', action='version', version=f'diffusionctl {client_version()}')
	commands = parser.add_subparsers(dest='command', required=True)
	gen = commands.add_parser(
		'generate',
		help='generate images',
		epilog='example: diffusionctl generate "a red fox" -o fox.png --steps 20 --seed 7',
	)
	gen.add_argument('prompt', help='what to draw (A1111 prompt text)')
	gen.add_argument(
		'-o', '--output', type=Path, default=Path('image.png'), help='file to write (NAME-i.ext for several)'
	)
	gen.add_argument('--overwrite', action='store_true', help='replace output files that exist (default: refuse)')
	gen.add_argument('--negative', dest='negative_prompt', help='what to keep out of the image')
	gen.add_argument('--model', help="id, name or hash prefix (default: the daemon's default model)")
	gen.add_argument('--steps', type=int, help="denoising steps (default: the model's, else 20)")
	gen.add_argument(
		'--seed', type=int, help='seed of the first image (default or -1: random, as in A1111); image i uses seed + i'
	)
	gen.add_argument('--size', type=_size, help='WIDTHxHEIGHT (default: the model native size)')
	gen.add_argument(
		'--hires-scale', type=float, help='hires fix: upscale by this much (A1111 hr_scale), then denoise again'
	)
	gen.add_argument('--hires-size', type=_size, help='hires fix: to WIDTHxHEIGHT instead of a scale')
	gen.add_argument(
		'--hires-upscaler', help='hires fix upscaler: Latent (default), "Latent (bicubic antialiased)", Lanczos, ...'
	)
	gen.add_argument('--hires-steps', type=int, help="hires fix second-pass steps (default: the first pass's)")
	gen.add_argument('--hires-strength', type=float, help='hires fix second-pass denoising strength (default 0.7)')
	gen.add_argument('--cfg', dest='guidance_scale', type=float, help="CFG scale (default: the model's, else 7.5)")
	gen.add_argument(
		'--clip-skip',
		type=int,
		help="A1111's clip skip: 1 = last CLIP layer, 2 = penultimate (default: the model's, else 1)",
	)
	gen.add_argument('--refiner', type=_refiner, help='NAME[:SWITCH_AT]: SDXL refiner finishing from 0.8 of the steps')
	gen.add_argument(
		'--controlnet',
		action='append',
		help='NAME:IMAGE[:SCALE]: a ControlNet of the controlnets folder with its control map (repeatable)',
	)
	gen.add_argument('--vae', help="a VAE of the vaes folder (default: the model's; 'none': the model's own)")
	gen.add_argument('--sampler', help=f'one of: {", ".join(sampler_names())} (or A1111 names such as "Euler a")')
	gen.add_argument(
		'--schedule', help=f'how the sampler spaces its steps: {", ".join(schedule_names())} (A1111: "SGM Uniform")'
	)
	gen.add_argument(
		'--deep-cache', dest='deep_cache_interval', type=int, help='DeepCache: a full UNet pass every N steps (2..10)'
	)
	gen.add_argument(
		'--tome', dest='token_merging_ratio', type=float, help='token merging: the fraction of tokens merged (0..0.75)'
	)
	gen.add_argument(
		'--fast-decode',
		action=argparse.BooleanOptionalAction,
		help="decode with the daemon's tiny autoencoder (TAESD): drafts",
	)
	gen.add_argument('-n', '--num-images', type=int, help='images in this job (default 1)')
	gen.add_argument(
		'--format', choices=['png', 'jpeg', 'webp'], help='image format (default: from the -o suffix, else png)'
	)
	gen.add_argument('--quality', type=int, help='JPEG/WebP quality 1..100 (default 90)')
	gen.add_argument(
		'--lora', action='append', metavar='NAME[:WEIGHT]', help='apply a LoRA (repeatable), e.g. --lora detail:0.8'
	)
	gen.add_argument('--priority', action='store_true', help='queue ahead of jobs without priority')
	gen.add_argument('--init-image', type=Path, help='img2img: start from this PNG/JPEG/WebP')
	gen.add_argument('--mask', type=Path, help='inpainting: repaint the white area of --init-image, keep the black')
	gen.add_argument('--mask-blur', type=int, metavar='PX', help='inpainting: soften the mask edge (A1111: 4)')
	gen.add_argument(
		'--mask-crop-padding',
		type=int,
		metavar='PX',
		help='inpainting: only the masked area, grown by PX, at full size',
	)
	gen.add_argument('--strength', type=float, help='img2img: 0..1, how far to move from --init-image (0.75)')
	gen.add_argument(
		'--keep-running', action='store_true', help='if this command is interrupted, the job still finishes (history)'
	)
	gen.add_argument('--triggers', action='store_true', help="append the LoRAs' trigger words to the prompt")
	gen.add_argument('--style', action='append', metavar='NAME', help='apply a style (repeatable, in order)')
	commands.add_parser('info', help='show the daemon, device and loaded models', epilog='example: diffusionctl info')
	for kind in ('embeddings', 'vaes', 'controlnets'):
		listing = commands.add_parser(kind, help=f'list the {kind} folder (name, base, hash)')
		listing.add_argument('--base', default='', help='only those for sd1, sd2 or sdxl')
	commands.add_parser('upscalers', help='list the upscalers folder (architecture, scale) and the built-in upscalers')
	upscale = commands.add_parser('upscale', help='upscale an image (an upscaler of the folder, or Lanczos)')
	upscale.add_argument('input', type=Path, help='the image (PNG, JPEG or WebP)')
	upscale.add_argument(
		'-o', '--output', type=Path, default=Path('upscaled.png'), help='where to save it (.png, .jpg or .webp)'
	)
	upscale.add_argument('--scale', type=float, help="how much larger (default: the upscaler's own; Lanczos: 2)")
	upscale.add_argument('--upscaler', default='', help='a name from `diffusionctl upscalers` (default: Lanczos)')
	upscale.add_argument('--overwrite', action='store_true', help='replace the output file if it exists')
	png_info = commands.add_parser(
		'png-info', help="read an image's generation parameters (A1111, ComfyUI, InvokeAI, ...) as a Generate request"
	)
	png_info.add_argument('file', type=Path, help='the image; - reads a pasted A1111 infotext from stdin')
	jobs = commands.add_parser('jobs', help='list or cancel jobs', epilog='example: diffusionctl jobs cancel JOB_ID')
	job_commands = jobs.add_subparsers(dest='jobs_command', required=True)
	job_commands.add_parser('list', help='queued and running jobs')
	job_commands.add_parser('clear', help='cancel every queued job (the running one goes on)')
	watch = job_commands.add_parser('watch', help='follow a queued or running job and save its images')
	watch.add_argument('job_id', help='the id Generate or jobs list gave')
	watch.add_argument('-o', '--output', type=Path, default=Path('image.png'), help='where to save the images')
	watch.add_argument('--overwrite', action='store_true', help='replace output files that exist (default: refuse)')
	cancel = job_commands.add_parser('cancel', help='cancel a queued or running job')
	cancel.add_argument('job_id', help='the id Generate or jobs list gave')
	cancel.add_argument(
		'--finish-early', action='store_true', help='a running job stops now and delivers its image as it is'
	)
	add_model_commands(commands)
	add_lora_commands(commands)
	add_style_commands(commands)
	add_history_commands(commands)
	return add_leaf_options(add_examples(parser))


JSON_HELP = 'machine-readable output (before or after the command)'


def client_version() -> str:
	try:
		return version('diffusiond')
	except PackageNotFoundError:
		return '0.0.0+unknown'


def add_leaf_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
	"""--json after the command too (`diffusionctl models list --json`); SUPPRESS keeps the global one's value."""
	for _, child in leaves(parser):
		child.add_argument('--json', action='store_true', default=argparse.SUPPRESS, help=JSON_HELP)
	return parser


def tls_from(args: argparse.Namespace) -> Tls | None:
	"""The TLS options of the command line, or None for a plain connection."""
	wanted = args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name
	if not wanted:
		return None
	return Tls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)
