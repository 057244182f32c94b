"""Builds requests from plain Python values; shared by the sync and asyncio clients."""

from typing import TypedDict, Unpack

from diffusiond.v1 import generation_service_pb2 as gen_pb

DEFAULT_ADDRESS = 'localhost:50051'
ADDRESS_ENV = 'DIFFUSIOND_ADDRESS'

_FORMATS = {
	'png': gen_pb.IMAGE_FORMAT_PNG,
	'jpeg': gen_pb.IMAGE_FORMAT_JPEG,
	'jpg': gen_pb.IMAGE_FORMAT_JPEG,
	'webp': gen_pb.IMAGE_FORMAT_WEBP,
}


RANDOM_SEED = -1  # A1111's seed for "pick one"


class GenerateOptions(TypedDict, total=False):
	"""Optional GenerateRequest fields; anything left out takes the daemon's default."""

	model: str
	negative_prompt: str
	width: int
	height: int
	steps: int
	guidance_scale: float
	clip_skip: int  # A1111's: 1 = the last CLIP layer, 2 = the penultimate
	sampler: str
	schedule: str  # A1111's schedule type: 'SGM Uniform' (Turbo, Lightning), 'Karras', 'Exponential', 'Beta', 'Uniform'
	deep_cache_interval: int  # DeepCache: a full UNet pass every N steps (2..10; 0 = off)
	token_merging_ratio: float  # ToMe: the fraction of tokens merged (0..0.75; 0 = off)
	fast_decode: bool  # decode with the tiny autoencoder (TAESD in the daemon's previewers/): drafts
	seed: int
	num_images: int
	output_format: str
	quality: int
	loras: list[str]  # 'name' or 'name:weight' (A1111 style); id or hash prefix works for name
	vae: str  # a VAE of the vaes folder (name, id or hash prefix); 'none' = the model's own
	controlnets: list[tuple[str, bytes, float]]  # (ControlNet, control image bytes, scale)
	refiner: tuple[str, float]  # (refiner model, switch at): SDXL's ensemble of experts
	add_trigger_words: bool
	styles: list[str]  # style ids or names, applied in order
	preview_every: int  # a JPEG preview every N steps (0 = none)
	priority: bool  # queue ahead of jobs without priority
	keep_running: bool  # the job finishes even if this call ends early
	init_image: bytes  # img2img: PNG/JPEG/WebP bytes
	strength: float  # img2img: how far to move from init_image, (0, 1]
	mask_image: bytes  # inpainting: white = repaint, black = keep (same size as init_image)
	mask_blur: int  # inpainting: soften the mask edge by this many pixels
	mask_crop_padding: int  # inpainting: only the masked area, grown by this many pixels
	hires_scale: float  # hires fix (A1111's enable_hr): upscale by this much, then denoise again
	hires_width: int  # or to this size (one alone keeps the aspect ratio)
	hires_height: int
	hires_upscaler: str  # 'Latent' (default), 'Latent (bicubic antialiased)', 'Lanczos', ... (A1111's names)
	hires_steps: int  # second-pass steps (0 = the first pass's)
	hires_strength: float  # second-pass denoising strength (default 0.7)


_SAMPLER_KEYS = frozenset(gen_pb.Sampler.keys())
_SCHEDULE_KEYS = frozenset(gen_pb.Schedule.keys())


def sampler_names() -> list[str]:
	return [
		name.removeprefix('SAMPLER_').lower() for name, _ in gen_pb.Sampler.items() if name != 'SAMPLER_UNSPECIFIED'
	]


def parse_sampler(name: str) -> gen_pb.Sampler.ValueType:
	"""Accepts A1111 names ('Euler a', 'DPM++ 2M Karras') and enum names ('euler_a', 'SAMPLER_DPMPP_2M')."""
	key = name.strip().upper().replace('++', 'PP').replace(' ', '_').replace('-', '_')
	key = key if key.startswith('SAMPLER_') else f'SAMPLER_{key}'
	if key not in _SAMPLER_KEYS:
		raise ValueError(f'unknown sampler {name!r}; known: {", ".join(sampler_names())}')
	return gen_pb.Sampler.Value(key)


def schedule_names() -> list[str]:
	return [
		name.removeprefix('SCHEDULE_').lower() for name, _ in gen_pb.Schedule.items() if name != 'SCHEDULE_UNSPECIFIED'
	]


def parse_schedule(name: str) -> gen_pb.Schedule.ValueType:
	"""Accepts A1111 names ('SGM Uniform', 'Karras', 'Automatic') and enum names ('sgm_uniform')."""
	key = name.strip().upper().replace(' ', '_').replace('-', '_')
	if key in ('', 'AUTOMATIC'):
		return gen_pb.SCHEDULE_UNSPECIFIED
	key = key if key.startswith('SCHEDULE_') else f'SCHEDULE_{key}'
	if key not in _SCHEDULE_KEYS:
		raise ValueError(f'unknown schedule {name!r}; known: automatic, {", ".join(schedule_names())}')
	return gen_pb.Schedule.Value(key)


def parse_format(name: str) -> gen_pb.ImageFormat.ValueType:
	if name.lower() not in _FORMATS:
		raise ValueError(f'unknown image format {name!r}; known: png, jpeg, webp')
	return _FORMATS[name.lower()]


def build_generate_request(prompt: str, **options: Unpack[GenerateOptions]) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(
		prompt=prompt, model=options.get('model', ''), negative_prompt=options.get('negative_prompt', '')
	)
	for field in ('width', 'height', 'steps', 'seed', 'num_images', 'quality', 'clip_skip'):
		value = options.get(field)
		if field == 'seed' and value == RANDOM_SEED:
			continue  # A1111's "random": left unset, the daemon draws one and reports it
		if isinstance(value, int):
			setattr(request, field, value)
	if 'guidance_scale' in options:
		request.guidance_scale = options['guidance_scale']
	if 'deep_cache_interval' in options:
		request.deep_cache_interval = options['deep_cache_interval']
	if 'token_merging_ratio' in options:
		request.token_merging_ratio = options['token_merging_ratio']
	if 'fast_decode' in options:
		request.fast_decode = options['fast_decode']
	if 'sampler' in options:
		request.sampler = parse_sampler(options['sampler'])
	if 'schedule' in options:
		request.schedule = parse_schedule(options['schedule'])
	if 'output_format' in options:
		request.output_format = parse_format(options['output_format'])
	request.loras.extend(parse_lora(text) for text in options.get('loras', []))
	request.vae = options.get('vae', '')
	if 'refiner' in options:
		name, switch_at = options['refiner']
		request.refiner.CopyFrom(gen_pb.RefinerPass(model=name, switch_at=switch_at))
	for name, image, scale in options.get('controlnets', []):
		request.controlnets.append(gen_pb.ControlNetUnit(model=name, image=image, scale=scale))
	request.add_trigger_words = options.get('add_trigger_words', False)
	request.styles.extend(options.get('styles', []))
	request.preview_every = options.get('preview_every', 0)
	request.priority = options.get('priority', False)
	request.keep_running = options.get('keep_running', False)
	request.init_image = options.get('init_image', b'')
	request.mask_image = options.get('mask_image', b'')
	request.mask_blur = options.get('mask_blur', 0)
	if 'mask_crop_padding' in options:
		request.mask_crop_padding = options['mask_crop_padding']
	if 'strength' in options:
		request.strength = options['strength']
	if any(key.startswith('hires_') for key in options):
		request.hires.CopyFrom(_hires(options))
	return request


def _hires(options: GenerateOptions) -> gen_pb.HiresFix:
	hires = gen_pb.HiresFix(
		width=options.get('hires_width', 0),
		height=options.get('hires_height', 0),
		upscaler=options.get('hires_upscaler', ''),
		steps=options.get('hires_steps', 0),
	)
	if 'hires_scale' in options:
		hires.scale = options['hires_scale']
	if 'hires_strength' in options:
		hires.denoising_strength = options['hires_strength']
	return hires


def parse_lora(text: str) -> gen_pb.LoraRef:
	"""'name' (the LoRA's default weight) or 'name:0.8'."""
	name, sep, weight = text.rpartition(':')
	if not sep:
		return gen_pb.LoraRef(lora=text)
	try:
		return gen_pb.LoraRef(lora=name, weight=float(weight))
	except ValueError:
		raise ValueError(f'a LoRA is NAME or NAME:WEIGHT (e.g. detail:0.8), got {text!r}') from None
