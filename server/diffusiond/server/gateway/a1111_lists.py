"""A1111's listing routes, from the daemon's own catalogs: sd-models, samplers, schedulers, loras, prompt-styles,
embeddings, upscalers, latent-upscale-modes, sd-vae, memory, scripts, and the refresh routes."""

import psutil
from fastapi import APIRouter

from diffusiond.server.catalog.schemas import ModelStatus
from diffusiond.server.gateway.a1111_params import title_of, upscaler_names
from diffusiond.server.gateway.context import Gateway
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.tasks.hires import LATENT_MODES

Rows = list[dict[str, object]]


def a1111_lists(gateway: Gateway) -> APIRouter:
	router = APIRouter(tags=['A1111 web API'])
	assets = gateway.manager.assets

	@router.get('/sd-models')
	async def sd_models() -> Rows:
		records = [record for record in await gateway.catalog.entries() if record.status is ModelStatus.READY]
		return [
			{
				'title': title_of(record.name, record.path, record.sha256),
				'model_name': record.name,
				'hash': (record.sha256 or '')[:10] or None,
				'sha256': record.sha256,
				'filename': str(gateway.catalog.models_dir / record.path),
				'config': None,
			}
			for record in records
		]

	@router.post('/refresh-checkpoints')
	async def refresh_checkpoints() -> None:
		await gateway.catalog.refresh()

	@router.get('/samplers')
	async def samplers() -> Rows:
		return [
			{'name': item.value, 'aliases': [], 'options': {}} for item in Sampler if item is not Sampler.UNSPECIFIED
		]

	@router.get('/schedulers')
	async def schedulers() -> Rows:
		return [
			{
				'name': schedule.value.lower().replace(' ', '_'),
				'label': schedule.value,
				'aliases': None,
				'default_rho': -1,
				'need_inner_model': False,
			}
			for schedule in Schedule
		]

	@router.get('/loras')
	async def loras() -> Rows:
		found = await gateway.loras.entries()
		return [
			{
				'name': record.name,
				'alias': record.display_name or record.name,
				'path': str(gateway.loras.folder / record.path),
				'metadata': {'ss_output_name': record.probe.output_name, 'trigger_words': record.trigger_words},
			}
			for record in found
			if record.enabled
		]

	@router.post('/refresh-loras')
	async def refresh_loras() -> None:
		await gateway.loras.refresh()

	@router.get('/prompt-styles')
	async def prompt_styles() -> Rows:
		window = await gateway.styles.browse('', 0, 10_000)
		return [
			{'name': style.name, 'prompt': style.prompt, 'negative_prompt': style.negative_prompt}
			for style in window.items
		]

	@router.get('/embeddings')
	async def embeddings() -> dict[str, dict[str, object]]:
		loaded: dict[str, object] = {}
		skipped: dict[str, object] = {}
		for record in await assets.embeddings.entries():
			item = {
				'step': None,
				'sd_checkpoint': None,
				'sd_checkpoint_name': None,
				'shape': record.probe.width,
				'vectors': record.probe.vectors,
			}
			(loaded if record.probe.status is ModelStatus.READY else skipped)[record.name] = item
		return {'loaded': loaded, 'skipped': skipped}

	@router.get('/upscalers')
	async def upscalers() -> Rows:
		found = {record.name: record for record in await assets.upscalers.entries()}
		rows: Rows = []
		for name in upscaler_names(
			[name for name, record in found.items() if record.probe.status is ModelStatus.READY]
		):
			record = found.get(name)
			path = str(assets.upscalers.folder / record.path) if record is not None else None
			scale = record.probe.scale if record is not None else None
			rows.append({'name': name, 'model_name': name, 'model_path': path, 'model_url': None, 'scale': scale})
		return rows

	@router.get('/latent-upscale-modes')
	async def latent_upscale_modes() -> Rows:
		return [{'name': name} for name in LATENT_MODES]

	@router.get('/sd-vae')
	async def sd_vae() -> Rows:
		found = await assets.vaes.entries()
		return [{'model_name': record.name, 'filename': str(assets.vaes.folder / record.path)} for record in found]

	@router.post('/refresh-vae')
	async def refresh_vae() -> None:
		await assets.vaes.refresh()

	@router.get('/memory')
	async def memory() -> dict[str, dict[str, object]]:
		ram = psutil.virtual_memory()
		status = await gateway.manager.status()
		device = status.device
		cuda: dict[str, object] = (
			{'system': {'total': device.memory_total_bytes, 'used': device.memory_used_bytes}}
			if device.kind == 'cuda'
			else {'error': f'the device is {device.kind}, not CUDA'}
		)
		return {'ram': {'free': ram.available, 'used': ram.total - ram.available, 'total': ram.total}, 'cuda': cuda}

	@router.get('/scripts')
	async def scripts() -> dict[str, list[str]]:
		return {'txt2img': [], 'img2img': []}

	return router
