"""Intake: a Generate request turned into the job spec the worker runs, or refused with the reason.

Decodes the init image and mask (off the loop), validates every field, resolves the model, LoRAs, styles,
embeddings and VAE, applies styles and trigger words, fills in every default, and sizes the sources to the job.
"""

import asyncio
from pathlib import Path

from diffusiond.server.catalog import Catalog, ModelInfo
from diffusiond.server.catalog.loras import LoraCatalog
from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.errors import (
	FailedPreconditionError,
	FieldViolation,
	InvalidArgumentError,
	LoraNotFoundError,
	ModelLoadError,
)
from diffusiond.server.jobs.assets import JobAssets, Vocabulary
from diffusiond.server.jobs.controls import resolve_controls
from diffusiond.server.jobs.generation_rules import output_size, prompt_checks
from diffusiond.server.jobs.prompts import expand, tagged_loras
from diffusiond.server.jobs.validation import check, job_size, resolve
from diffusiond.server.prompting.report import PromptCheck, report
from diffusiond.server.prompting.tokens import Tokenizers
from diffusiond.server.schemas import GenerateParams, JobSpec, RefinerSpec
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.speed import TINY_DECODERS, tiny_decoder
from diffusiond.server.styles.book import StyleBook
from diffusiond.server.styles.schemas import StyleRecord
from diffusiond.server.styles.templates import apply_styles
from diffusiond.server.tasks import Hires, build


class Intake:
	def __init__(
		self,
		catalog: Catalog,
		loras: LoraCatalog,
		assets: JobAssets,
		styles: StyleBook,
		limits: LimitsSettings,
		default_ready: asyncio.Event,
		previewers: Path | None = None,
	) -> None:
		self._catalog = catalog
		self._loras = loras
		self._assets = assets
		self._styles = styles
		self._limits = limits
		self._default_ready = default_ready  # set once the default model is known (start-up)
		self._previewers = previewers  # where fast_decode's tiny autoencoders are
		self._tokenizers = Tokenizers()  # the models' tokenizers, for the prompts' chunks

	async def check(self, model_ref: str, prompt: str, negative: str, style_refs: list[str]) -> PromptCheck:
		"""How Generate would read these prompts with this model, with no job made (TokenizePrompt)."""
		problems = [
			FieldViolation(field=field, description=problem)
			for field, problem in prompt_checks((('prompt', prompt), ('negative_prompt', negative)), self._limits)
			if problem is not None
		]
		if problems:
			raise InvalidArgumentError(problems)
		if not model_ref:
			await self._default_ready.wait()
		model = await self._catalog.info(await self._catalog.resolve(model_ref))
		texts = apply_styles(prompt, negative, await self._styles.resolve(style_refs, used=False))
		names = (await self._assets.vocabulary()).names
		tokens = await asyncio.to_thread(self._tokenizers.tokens, model, texts.prompt, texts.negative_prompt, names)
		found = PromptCheck(
			model=model.name,
			prompt=report(texts.prompt, tokens.prompt if tokens else None),
			negative=report(texts.negative_prompt, tokens.negative if tokens else None),
		)
		for tag in found.prompt.loras:
			try:
				tag.id = (await self._loras.get(tag.name, rescan=False)).id
			except LoraNotFoundError:
				found.unknown_loras.append(tag.name)
		return found

	async def spec(self, params: GenerateParams) -> tuple[JobSpec, ModelInfo]:
		sources = await asyncio.to_thread(params.task.sources, self._limits.max_image_pixels)
		if sources is not None:  # unset sizes follow the init image
			width, height = sources.size
			params = params.model_copy(update={'width': params.width or width, 'height': params.height or height})
		check(params, self._limits)
		if not params.model:
			await self._default_ready.wait()  # calls made during start-up wait for the default model
		model = await self._catalog.loadable(params.model, not params.task.inpaints(), params.task.from_noise())
		styles = await self._styles.resolve(params.styles)
		texts = apply_styles(params.prompt, params.negative_prompt, styles)
		loras = await self._loras.resolve(tagged_loras(params.loras, texts.prompt, self._limits), model)
		prompts = expand(texts, styles, loras, params.add_trigger_words)
		width, height = job_size(params, model)
		task = await asyncio.to_thread(build, params.task, sources, width, height)  # sources sized, encoded
		output_size(task.output_size(width, height), self._limits)
		spec = resolve(params, model, self._limits, task, [lora.spec for lora in loras], prompts)
		vocabulary = await self._assets.vocabulary()
		prompts_of = (model, spec.prompt, spec.negative_prompt, vocabulary.names)
		tokens = await asyncio.to_thread(self._tokenizers.tokens, *prompts_of)
		embeddings = self._assets.embedding_specs(tokens, vocabulary, model)
		if isinstance(task, Hires) and task.own_prompts():
			task = await self._second_pass(task, spec, styles, vocabulary, model)
			more = self._assets.embedding_specs(task.tokens, vocabulary, model)
			embeddings += [item for item in more if item.name not in {known.name for known in embeddings}]
			spec = spec.model_copy(update={'task': task})
		if isinstance(task, Hires) and task.by_model():  # an upscaler of the folder
			file = await self._assets.upscalers.resolve(task.upscaler)
			spec = spec.model_copy(update={'task': task.model_copy(update={'file': file, 'upscaler': file.name})})
		vae, notices = await self._assets.vae(params.vae, model)
		controls = await resolve_controls(
			params.controlnets, self._assets.controlnets, model, (width, height), self._limits.max_image_pixels
		)
		refiner = await self._refiner(params, model)
		if spec.fast_decode:
			await asyncio.to_thread(self._tiny_decoder, model)
		update: dict[str, object] = {'tokens': tokens, 'embeddings': embeddings, 'vae': vae, 'notices': notices}
		update |= {'controlnets': controls, 'refiner': refiner}
		spec = spec.model_copy(update=update)
		if spec.progress_steps < 1:
			raise InvalidArgumentError(
				[
					FieldViolation(
						field='strength',
						description=f'{spec.steps} steps at this strength denoise no step at all '
						'(steps x strength rounds down to 0); raise the strength or the steps',
					)
				]
			)
		return spec, model

	def _tiny_decoder(self, model: ModelInfo) -> None:
		"""fast_decode needs the tiny autoencoder of the model's family (blocking: a file check)."""
		if self._previewers is None or tiny_decoder(self._previewers, model.base) is None:
			folder = TINY_DECODERS.get(model.base, 'taesd')
			raise FailedPreconditionError(
				f'fast_decode needs the tiny autoencoder for {model.base.value} models: put its diffusers folder '
				f'(madebyollin/{folder}) in <data dir>/previewers/{folder}, or leave fast_decode off',
				metadata={'folder': f'previewers/{folder}'},
			)

	async def _second_pass(
		self, task: Hires, spec: JobSpec, styles: list[StyleRecord], vocabulary: Vocabulary, model: ModelInfo
	) -> Hires:
		"""A hires fix's own second-pass prompts, styled (those it leaves empty are the first pass's), in chunks."""
		styled = apply_styles(task.prompt, task.negative_prompt, styles)
		prompt = styled.prompt if task.prompt else ''
		negative = styled.negative_prompt if task.negative_prompt else ''
		texts = (prompt or spec.prompt, negative or spec.negative_prompt)
		tokens = await asyncio.to_thread(self._tokenizers.tokens, model, *texts, vocabulary.names)
		return task.model_copy(update={'prompt': prompt, 'negative_prompt': negative, 'tokens': tokens})

	async def _refiner(self, params: GenerateParams, model: ModelInfo) -> RefinerSpec | None:
		"""The refiner model, checked to be loadable and, where the bases are known, SDXL like the model."""
		if params.refiner is None:
			return None
		refiner = await self._catalog.loadable(params.refiner.ref, unmasked_job=True)
		bases = {model.base, refiner.base} - {ModelBase.UNKNOWN}
		if bases - {ModelBase.SDXL}:
			raise ModelLoadError(
				f'the refiner pass is for SDXL: model {model.name!r} is {model.base.name}, refiner {refiner.name!r} '
				f'is {refiner.base.name}',
				metadata={'model': model.name, 'refiner': refiner.name},
			)
		return RefinerSpec(model=refiner, switch_at=params.refiner.switch_at)
