"""The loop side's pure logic, with no daemon and no sleeps: batching partners, queue order and positions, job-time
estimates, prompt expansion and task validation."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe
from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.catalog.loras import ResolvedLora
from diffusiond.server.catalog.schemas import ModelInfo, ModelStatus
from diffusiond.server.errors import InvalidArgumentError, JobFinishedError, QueueFullError
from diffusiond.server.jobs.batching import partners
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.estimate import Estimator
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.prompts import expand, tagged_loras
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.schemas import AssetSpec, GenerateParams, JobSpec, JobState, LoraRequest, LoraSpec
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.styles.templates import apply_styles
from diffusiond.server.tasks import (
	Hires,
	Img2Img,
	Img2ImgRequest,
	InpaintRequest,
	Txt2Img,
	Txt2ImgRequest,
	task_request,
)
from tests.helpers import style_record

MODEL = ModelInfo(id='m', name='m', path=Path('m'), native_size=64)
NOW = datetime.now(UTC)


def _spec(images: int = 1, width: int = 64, steps: int = 10, task: Txt2Img | Img2Img | Hires | None = None) -> JobSpec:
	params = GenerateParams(prompt='x', steps=steps, width=width, height=64, num_images=images)
	return resolve(params, MODEL, LimitsSettings(), task)


def _job(spec: JobSpec, priority: bool = False) -> Job:
	return Job(spec, MODEL, EventChannel(asyncio.get_running_loop()), priority)


async def test_partners_share_a_shape_up_to_the_image_limit() -> None:
	head = _job(_spec(images=2))
	same, other_size, big, same_again = _job(_spec()), _job(_spec(width=128)), _job(_spec(images=4)), _job(_spec())
	queued = [same, other_size, big, same_again]
	assert partners(head, queued, 4) == [same, same_again], 'the 4-image job no longer fits; the 128 wide never'
	assert partners(head, queued, 1) == [], 'batching off'
	assert partners(_job(_spec(task=Img2Img(strength=0.5))), [same], 8) == [], 'img2img runs alone'
	assert partners(head, [_job(_spec(task=Img2Img(strength=0.5)))], 8) == []


async def test_jobs_with_other_vaes_never_share_a_call_but_other_embeddings_do() -> None:
	vae = AssetSpec(id='v', name='v', file='v.safetensors', path=Path('v'), key='v:1:1')
	embedding = AssetSpec(id='e', name='e', file='e.pt', path=Path('e'), key='e:1:1', vectors=2)
	head = _job(_spec())
	with_vae = _job(_spec().model_copy(update={'vae': vae}))
	with_embedding = _job(_spec().model_copy(update={'embeddings': [embedding]}))
	assert partners(head, [with_vae, with_embedding], 8) == [with_embedding]
	assert partners(with_vae, [head, _job(_spec().model_copy(update={'vae': vae}))], 8)[0].spec.vae == vae


async def test_a_waiting_priority_job_of_another_shape_lets_only_priority_partners_ride() -> None:
	head = _job(_spec(), priority=True)
	urgent_other, normal, urgent_same = _job(_spec(width=128), True), _job(_spec()), _job(_spec(), True)
	assert partners(head, [urgent_other, normal, urgent_same], 8) == [urgent_same]
	assert partners(head, [normal], 8) == [normal]


async def test_the_queue_puts_priority_jobs_ahead_in_their_own_order_and_numbers_positions() -> None:
	queue = JobQueue(8, Estimator())
	first, second = _job(_spec()), _job(_spec())
	urgent, urgent_two = _job(_spec(), True), _job(_spec(), True)
	for job in (first, second, urgent, urgent_two):
		queue.put(job)
	assert [info.job_id for info in queue.snapshot()] == [urgent.id, urgent_two.id, first.id, second.id]
	assert [info.position for info in queue.snapshot()] == [1, 2, 3, 4]
	taken = queue.take()
	assert taken == [urgent]
	assert urgent.state is JobState.RUNNING
	assert [(info.job_id, info.position) for info in queue.snapshot()][:2] == [(urgent.id, 0), (urgent_two.id, 1)]
	assert queue.cancel_queued() == [urgent_two.id, first.id, second.id]
	assert (first.state, second.state, queue.depth) == (JobState.CANCELLED, JobState.CANCELLED, 0)


async def test_a_running_job_whose_end_is_final_cannot_be_cancelled_before_the_worker_hands_it_back() -> None:
	queue = JobQueue(8, Estimator())
	job = _job(_spec())
	queue.put(job)
	assert queue.take() == [job]
	job.state = JobState.CANCELLED  # its end is final; done() has not run yet
	assert queue.snapshot() == [], 'ListJobs no longer shows it'
	with pytest.raises(JobFinishedError, match='already finished \\(cancelled\\); nothing to cancel'):
		queue.cancel(job.id)


async def test_a_full_queue_says_how_long_the_jobs_ahead_take() -> None:
	estimator = Estimator()
	spec = _spec()
	estimator.observe([spec], 3.0)
	queue = JobQueue(2, estimator)
	queue.put(_job(spec))
	queue.put(_job(spec))
	with pytest.raises(QueueFullError) as caught:
		queue.put(_job(spec))
	assert caught.value.retry_after_s == pytest.approx(6.0)
	unknown = JobQueue(1, Estimator())
	unknown.put(_job(spec))
	with pytest.raises(QueueFullError) as never_run:
		unknown.put(_job(spec))
	assert never_run.value.retry_after_s == 1.0, 'nothing learned yet: the shortest hint'


async def test_estimates_scale_with_the_work_and_count_a_batch_once() -> None:
	estimator = Estimator()
	spec = _spec()
	assert estimator.seconds(spec) is None
	estimator.observe([spec], 2.0)
	assert estimator.seconds(_spec(steps=20)) == pytest.approx(4.0)
	assert estimator.seconds(_spec(images=3)) == pytest.approx(6.0)
	assert estimator.seconds(spec, done_steps=5) == pytest.approx(1.0)
	hires = Hires(scale=2, width=128, height=128, upscaler='Latent', steps=0, strength=0.5)
	assert estimator.seconds(_spec(task=hires)) == pytest.approx(2.0 + 4 * 1.0), 'a second pass of 5 steps at 4x'
	assert estimator.seconds(_spec(task=Img2Img(strength=0.5))) == pytest.approx(1.0), 'img2img: steps x strength'
	estimator.observe([spec], 4.0)  # a moving average, not the last run
	assert estimator.seconds(spec) == pytest.approx(0.7 * 2.0 + 0.3 * 4.0)
	running = [_job(spec), _job(spec)]
	for job in running:
		job.state = JobState.RUNNING
	rate = estimator.seconds(spec) or 0.0
	assert estimator.wait([*running, _job(spec)]) == pytest.approx(2 * rate), 'the batch ends together'


def _lora(*words: str) -> ResolvedLora:
	probe = LoraProbe(format=LoraFormat.KOHYA, status=ModelStatus.READY)
	record = LoraRecord(
		id='l',
		name='l',
		path='l.safetensors',
		probe=probe,
		size_bytes=1,
		mtime_ns=1,
		sha256=None,
		addnet_hash=None,
		display_name='',
		tags=[],
		trigger_words=list(words),
		custom_triggers=False,
		default_weight=1.0,
		enabled=True,
		added_at=NOW,
		last_used_at=None,
	)
	return ResolvedLora(
		record=record, spec=LoraSpec(id='l', name='l', path=Path('l'), weight=1, short_hash='', key='k')
	)


def test_prompts_take_styles_in_order_then_missing_trigger_words() -> None:
	styles = [style_record('frame', 'a photo of {prompt}', 'blurry'), style_record('light', 'golden hour', 'dark')]
	prompts = expand(apply_styles('a fox', 'ugly', styles), styles, [_lora('FoxStyle', 'sks')], trigger_words=True)
	assert prompts.prompt == 'a photo of a fox, golden hour, FoxStyle, sks'
	assert prompts.negative_prompt == 'ugly, blurry, dark'
	assert prompts.styles == ['frame', 'light']
	assert expand(apply_styles('SKS fox', '', []), [], [_lora('sks')], True).prompt == 'SKS fox', 'already there'
	assert expand(apply_styles('fox', '', []), [], [_lora('sks')], trigger_words=False).prompt == 'fox'
	assert expand(apply_styles('', '', []), [], [_lora('sks')], trigger_words=True).prompt == 'sks'


def test_the_kind_is_decided_once_and_stray_fields_are_named() -> None:
	assert isinstance(task_request(b'', b'', None, 0, None), Txt2ImgRequest)
	assert isinstance(task_request(b'img', b'', 0.5, 0, None), Img2ImgRequest)
	inpaint = task_request(b'img', b'mask', None, 4, 8)
	assert isinstance(inpaint, InpaintRequest)
	assert inpaint.inpaints()
	stray = task_request(b'', b'mask', 0.5, 3, None).violations()
	assert [violation.field for violation in stray] == ['mask_image', 'strength', 'mask_blur']
	assert [v.field for v in task_request(b'img', b'', None, 0, 16).violations()] == ['mask_crop_padding']


@pytest.mark.parametrize('strength', [0.0, -0.1, 1.01, float('nan'), float('inf')])
def test_strength_outside_zero_to_one_is_refused(strength: float) -> None:
	for request in (task_request(b'i', b'', strength, 0, None), task_request(b'i', b'm', strength, 0, None)):
		assert [violation.field for violation in request.violations()] == ['strength']


def test_tasks_say_their_steps_batching_and_infotext() -> None:
	img2img = Img2Img(strength=0.55)
	assert (img2img.progress_steps(20), Txt2Img().progress_steps(20)) == (11, 20)
	assert (Txt2Img().batches(), img2img.batches()) == (True, False)
	assert img2img.infotext() == [('Denoising strength', '0.55')]
	assert Img2Img(strength=7.0).repaired().strength == 0.75, 'a damaged stored value reads as the default'
	assert Img2Img(strength=0.5, init_image=b'png').without_sources().init_image == b''


def test_prompt_tags_add_loras_and_refuse_doubles() -> None:
	limits = LimitsSettings()
	found = tagged_loras([LoraRequest(ref='a', weight=0.5)], 'x <lora:b:-1> y', limits)
	assert found == [LoraRequest(ref='a', weight=0.5), LoraRequest(ref='b', weight=-1.0, in_prompt=True)]
	with pytest.raises(InvalidArgumentError, match='named in `loras` and as <lora:a>'):
		tagged_loras([LoraRequest(ref='a')], 'x <lora:a>', limits)
	with pytest.raises(InvalidArgumentError, match='at most 8 LoRAs'):
		tagged_loras([], ' '.join(f'<lora:l{index}>' for index in range(9)), limits)
