"""A1111 request bodies turned into the daemon's own GenerateParams (no second set of rules: intake checks them as
it checks a gRPC request), and A1111's `info` JSON made from the job that ran."""

import json
import re
from datetime import datetime

from diffusiond.server import __version__
from diffusiond.server.errors import invalid
from diffusiond.server.gateway.a1111_schemas import Img2ImgBody, ProcessingBody, Txt2ImgBody
from diffusiond.server.gateway.jobs import Finished
from diffusiond.server.jobs.job import Job
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.schemas import GenerateParams, RefinerRequest
from diffusiond.server.tasks import Hires, HiresRequest, Img2Img, Inpaint, task_request
from diffusiond.server.tasks.upscale import BUILTIN_UPSCALERS

_TITLE_HASH = re.compile(r'\s*\[[0-9a-fA-F]{8,64}\]$')
_MODEL_SUFFIXES = ('.safetensors', '.ckpt', '.pt', '.pth', '.bin')
AUTOMATIC_VAE = ('', 'automatic')  # A1111's sd_vae: the model's own or its default
NO_UPSCALER = 'none'  # A1111's "None": a plain resize


def model_ref(title: str) -> str:
	"""A checkpoint as A1111 clients name it ('sub/name.safetensors [hash10]') as our catalog resolves it."""
	name = _TITLE_HASH.sub('', title.strip())
	for suffix in _MODEL_SUFFIXES:
		if name.endswith(suffix):
			return name.removesuffix(suffix)
	return name


def sampler_of(name: str | None, scheduler: str | None, field: str = 'sampler_name') -> Sampler:
	"""A1111's sampler name, with its scheduler where one makes a sampler we have ('DPM++ 2M' + 'karras')."""
	if not name:
		return Sampler.UNSPECIFIED
	known = {sampler.value.lower(): sampler for sampler in Sampler if sampler is not Sampler.UNSPECIFIED}
	wanted = name.strip().lower()
	if (scheduler or '').lower() == 'karras' and f'{wanted} karras' in known:
		wanted = f'{wanted} karras'
	if wanted not in known:
		listed = ', '.join(sampler.value for sampler in known.values())
		raise invalid(field, f'unknown sampler {name!r}; known: {listed} (GET /sdapi/v1/samplers)')
	return known[wanted]


def schedule_of(scheduler: str | None, sampler: Sampler) -> Schedule:
	"""A1111's scheduler (name 'sgm_uniform' or label 'SGM Uniform'); Karras is already in a "… Karras" sampler."""
	wanted = (scheduler or '').strip().lower().replace(' ', '_')
	if wanted in ('', 'automatic') or (wanted == 'karras' and sampler.name.endswith('_KARRAS')):
		return Schedule.UNSPECIFIED
	found = next((schedule for schedule in Schedule if schedule.value.lower().replace(' ', '_') == wanted), None)
	if found is None:
		listed = ', '.join(schedule.value for schedule in Schedule)
		raise invalid('scheduler', f'unknown scheduler {scheduler!r}; known: {listed} (GET /sdapi/v1/schedulers)')
	return found


def _unsupported(body: ProcessingBody) -> None:
	if body.script_name:
		raise invalid('script_name', f'script {body.script_name!r} not found: this server runs no A1111 scripts')
	scripts = [name for name, value in body.alwayson_scripts.items() if value not in ({}, {'args': []}, None)]
	if scripts:
		raise invalid('alwayson_scripts', f'always-on scripts {scripts} not found: this server runs no extensions')
	for field in ('restore_faces', 'tiling'):
		if getattr(body, field):
			raise invalid(field, f'{field} is not supported here; send false or leave it out')


def _common(body: ProcessingBody, preview_every: int) -> dict[str, object]:
	_unsupported(body)
	overrides = body.override_settings
	vae = overrides.sd_vae or ''
	sampler = sampler_of(body.sampler_name or body.sampler_index, body.scheduler)
	return {
		'model': model_ref(overrides.sd_model_checkpoint or ''),
		'prompt': body.prompt,
		'negative_prompt': body.negative_prompt,
		'width': body.width,
		'height': body.height,
		'steps': body.steps,
		'guidance_scale': body.cfg_scale,
		'clip_skip': overrides.CLIP_stop_at_last_layers,
		'sampler': sampler,
		'schedule': schedule_of(body.scheduler, sampler),
		'seed': body.seed if body.seed >= 0 else None,
		'num_images': body.batch_size * body.n_iter,
		'styles': body.styles,
		'vae': '' if vae.lower() in AUTOMATIC_VAE else model_ref(vae),
		'preview_every': preview_every,
		'refiner': RefinerRequest(ref=model_ref(body.refiner_checkpoint), switch_at=body.refiner_switch_at or 0.8)
		if body.refiner_checkpoint
		else None,
	}


def _hires(body: Txt2ImgBody) -> HiresRequest | None:
	if not body.enable_hr:
		return None
	sized = bool(body.hr_resize_x or body.hr_resize_y)
	upscaler = body.hr_upscaler or ''
	return HiresRequest(
		scale=None if sized else body.hr_scale,
		width=body.hr_resize_x,
		height=body.hr_resize_y,
		upscaler='None' if upscaler.lower() == NO_UPSCALER else upscaler,
		steps=body.hr_second_pass_steps,
		strength=body.denoising_strength,
		prompt=body.hr_prompt,
		negative_prompt=body.hr_negative_prompt,
		sampler=sampler_of(body.hr_sampler_name, body.scheduler, 'hr_sampler_name'),
	)


def txt2img_params(body: Txt2ImgBody, preview_every: int) -> GenerateParams:
	task = task_request(b'', b'', None, 0, None, _hires(body))
	return GenerateParams.model_validate({**_common(body, preview_every), 'task': task})


def img2img_params(body: Img2ImgBody, init: bytes, mask: bytes, preview_every: int) -> GenerateParams:
	if body.inpainting_fill not in (0, 1):
		raise invalid(
			'inpainting_fill',
			'inpainting starts from the image under the mask (0 "fill" and 1 "original" do that); 2 "latent noise" '
			'and 3 "latent nothing" are not supported',
		)
	padding = body.inpaint_full_res_padding if body.inpaint_full_res else None
	task = task_request(init, mask, body.denoising_strength, body.mask_blur if mask else 0, padding if mask else None)
	return GenerateParams.model_validate({**_common(body, preview_every), 'task': task})


def info_json(finished: Finished, infotexts: list[str]) -> str:
	"""A1111's `info` (Processed.js()) for a finished generation job."""
	job = finished.job
	if not isinstance(job, Job):
		return '{}'
	spec, model = job.spec, job.model
	seeds = spec.seeds
	info = {
		'prompt': spec.prompt,
		'all_prompts': [spec.prompt] * len(seeds),
		'negative_prompt': spec.negative_prompt,
		'all_negative_prompts': [spec.negative_prompt] * len(seeds),
		'seed': seeds[0] if seeds else -1,
		'all_seeds': seeds,
		'subseed': -1,
		'all_subseeds': [-1] * len(seeds),
		'subseed_strength': 0,
		'width': spec.width,
		'height': spec.height,
		'sampler_name': spec.sampler.value,
		'cfg_scale': spec.guidance_scale,
		'steps': spec.steps,
		'batch_size': len(seeds),
		'restore_faces': False,
		'face_restoration_model': None,
		'sd_model_name': model.name,
		'sd_model_hash': (model.sha256 or '')[:10] or None,
		'sd_vae_name': spec.vae.name if spec.vae is not None else None,
		'sd_vae_hash': spec.vae.sha256[:10] if spec.vae is not None and spec.vae.sha256 else None,
		'seed_resize_from_w': -1,
		'seed_resize_from_h': -1,
		'denoising_strength': spec.task.strength if isinstance(spec.task, Img2Img | Inpaint | Hires) else None,
		'extra_generation_params': {},
		'index_of_first_image': 0,
		'infotexts': infotexts,
		'styles': spec.styles,
		'job_timestamp': timestamp(job.created_at),
		'clip_skip': spec.clip_skip,
		'is_using_inpainting_conditioning': False,
		'version': f'diffusiond {__version__}',
		'job_id': job.id,
	}
	return json.dumps(info)


def upscaler_names(folder: list[str]) -> list[str]:
	return ['None', *BUILTIN_UPSCALERS, *folder]


def timestamp(moment: datetime) -> str:
	return moment.strftime('%Y%m%d%H%M%S')


def title_of(name: str, path: str, sha256: str | None) -> str:
	"""A checkpoint as A1111 lists it: its file with a 10-character hash ('sub/name.safetensors [abcdef0123]')."""
	return f'{path} [{sha256[:10]}]' if sha256 else path or name
