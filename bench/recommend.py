"""LoRA recommendations: RecommendLoras latency (p50 / p99 over the RPC, in-process daemon with a fake backend) over
1,000 catalogued LoRAs with a history of uses, for new prompts (each embedded) and a repeated one; the time to embed
1,000 LoRAs' metadata (from the rescan to every vector stored) and the embedding model's own time for them."""

import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from diffusiond.server.app import Daemon
from diffusiond.server.catalog.lora_schemas import LoraChanges
from diffusiond.server.recommend.vectors import lora_text
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from tests.checkpoints import fake_lora
from tests.conftest import make_settings, write_fake_model
from tests.fakes import FakeEngine

_LORAS = 1000
_HISTORY = 200
_CALLS = 200
_WORDS = [
	'pixel',
	'art',
	'anime',
	'watercolor',
	'ink',
	'sketch',
	'portrait',
	'landscape',
	'castle',
	'forest',
	'city',
	'neon',
	'cyberpunk',
	'fox',
	'cat',
	'dragon',
	'knight',
	'armor',
	'sword',
	'flower',
	'garden',
	'ocean',
	'sunset',
	'night',
	'snow',
	'rain',
	'robot',
	'spaceship',
	'steampunk',
	'gothic',
	'baroque',
	'oil',
	'painting',
	'photograph',
	'film',
	'grain',
	'bokeh',
	'detail',
	'lighting',
	'glow',
	'shadow',
	'vintage',
	'retro',
	'comic',
	'manga',
	'chibi',
	'mecha',
	'elf',
	'wizard',
]


def _percentile(values: list[float], share: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _prompt(rng: random.Random) -> str:
	return ', '.join(' '.join(rng.sample(_WORDS, 2)) for _ in range(rng.randint(3, 8)))


async def _plant(daemon: Daemon, rng: random.Random) -> float:
	"""1,000 LoRAs with training tags, trigger words and tags; the seconds until each has its vector stored."""
	for index in range(_LORAS):
		tags = {f'{rng.choice(_WORDS)} {rng.choice(_WORDS)}': rng.randint(1, 50) for _ in range(8)}
		fake_lora(
			daemon.settings.storage.loras_dir / f'lora-{index:04}.safetensors',
			'sd1',
			{'ss_tag_frequency': json.dumps({'t': tags})},
		)
	start = time.perf_counter()
	await daemon.loras.refresh()
	for record in await daemon.loras.repo.of_base(None):
		changes = LoraChanges(trigger_words=[rng.choice(_WORDS) + str(rng.randint(0, 99))], tags=rng.sample(_WORDS, 3))
		await daemon.loras.update(record.id, changes)
	await daemon.recommender.settled()
	return time.perf_counter() - start


async def _measure() -> list[tuple[str, str]]:
	rng = random.Random(1)
	with tempfile.TemporaryDirectory() as scratch:
		data = Path(scratch)
		write_fake_model(data / 'models' / 'sd15', cross_attention_dim=768)
		daemon = Daemon(make_settings(data, {'loras': {'text_embeddings': True}}), FakeEngine(step_s=0.0))
		await daemon.start()
		await daemon.ready.wait()
		try:
			embed_s = await _plant(daemon, rng)
			embedder = daemon.recommender.embedder
			texts = [lora_text(record) for record in await daemon.loras.repo.of_base(None)]
			model_s = 0.0
			if embedder is not None:
				start = time.perf_counter()
				await embedder.embed_in_thread(texts)
				model_s = time.perf_counter() - start
			async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
				generate = gen_grpc.GenerationServiceStub(channel)
				names = [record.name for record in await daemon.loras.repo.of_base(None)]
				for _ in range(_HISTORY):
					tags = ' '.join(f'<lora:{name}:{rng.choice((0.5, 0.8, 1.0))}>' for name in rng.sample(names, 2))
					request = gen_pb.GenerateRequest(model='sd15', prompt=f'{_prompt(rng)} {tags}', steps=1)
					async for _ in generate.Generate(request):
						pass
				stub = lora_grpc.LoraServiceStub(channel)
				fresh: list[float] = []
				repeated: list[float] = []
				same = _prompt(rng)
				for _ in range(_CALLS):
					for prompt, times in ((_prompt(rng), fresh), (same, repeated)):
						start = time.perf_counter()
						await stub.RecommendLoras(lora_pb.RecommendLorasRequest(prompt=prompt, model='sd15'))
						times.append(time.perf_counter() - start)
		finally:
			await daemon.shutdown(0.0)
	kind = 'with text similarity' if embedder is not None else 'metadata and history only'
	rows = [(f'recommend: LoRAs / history generations ({kind})', f'{_LORAS} / {_HISTORY}')]
	for label, times in (('new prompts', fresh), ('a repeated prompt', repeated)):
		rows.append(
			(
				f'recommend: RecommendLoras p50 / p99 ms, {label}',
				f'{statistics.median(times) * 1000:.1f} / {_percentile(times, 0.99) * 1000:.1f}',
			)
		)
	rows.append((f'recommend: rescan to {_LORAS} vectors stored, s', f'{embed_s:.1f}'))
	rows.append((f'recommend: embedding {_LORAS} LoRA texts (model alone), s', f'{model_s:.1f}'))
	return rows


def run_recommend() -> list[tuple[str, str]]:
	return asyncio.run(_measure())


if __name__ == '__main__':
	for name, value in run_recommend():
		print(f'{name:<60} {value:>14}')
