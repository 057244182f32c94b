"""Images carry A1111's `parameters` text (PNG chunk or EXIF UserComment) and our JSON record."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import ExifTags, Image

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.jobs.encode import USER_COMMENT, encode_image
from diffusiond.server.jobs.infotext import image_metadata, quote
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import AssetSpec, ImageFormat, JobSpec, LoraSpec
from diffusiond.server.tasks import Txt2Img
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect


def _spec(**changes: object) -> JobSpec:
	base = JobSpec(
		model='sd15/dream',
		prompt='a red fox, snow',
		negative_prompt='blurry',
		width=512,
		height=768,
		steps=20,
		guidance_scale=7.0,
		sampler=Sampler.EULER_A,
		seeds=[123],
		output_format=ImageFormat.PNG,
		quality=90,
		task=Txt2Img(),
	)
	return base.model_copy(update=changes)


MODEL = ModelInfo(id='m', name='sd15/dream', path=Path('x'), native_size=512, sha256='0123456789abcdef' * 4)


def test_the_a1111_text_is_exact() -> None:
	lora = LoraSpec(id='l', name='detail', path=Path('d'), weight=0.8, short_hash='abcdef012345', key='k')
	text = image_metadata(_spec(loras=[lora]), MODEL, 'EulerAncestralDiscreteScheduler', 123, 0, 'job').parameters
	assert text == (
		'a red fox, snow <lora:detail:0.8>\n'  # a LoRA given in `loras` is written as A1111 writes it: a tag
		'Negative prompt: blurry\n'
		'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: 0123456789, '
		'Model: sd15/dream, Lora hashes: "detail: abcdef012345", Version: diffusiond 0.1.0'
	)
	plain = image_metadata(
		_spec(negative_prompt='', sampler=Sampler.UNSPECIFIED, guidance_scale=7.5),
		MODEL.model_copy(update={'sha256': None}),
		'PNDMScheduler',
		5,
		0,
		'job',
	).parameters
	assert (
		plain
		== 'a red fox, snow\nSteps: 20, Sampler: PNDM, CFG scale: 7.5, Seed: 5, Size: 512x768, Model: sd15/dream, Version: diffusiond 0.1.0'
	)
	assert quote('a, b') == '"a, b"'
	assert quote('plain') == 'plain'


def test_embeddings_and_a_vae_are_written_as_a1111_writes_them() -> None:
	vae = AssetSpec(id='v', name='ft-mse', file='ft-mse.safetensors', path=Path('v'), key='k', sha256='c6a580b13a' * 6)
	easy = AssetSpec(
		id='e', name='EasyNegative', file='EasyNegative.pt', path=Path('e'), key='k', sha256='66a7279a88dd' * 5
	)
	unhashed = AssetSpec(id='u', name='fresh', file='fresh.pt', path=Path('u'), key='k')
	spec = _spec(prompt='a red fox, fresh', negative_prompt='EasyNegative', vae=vae, embeddings=[unhashed, easy])
	text = image_metadata(spec, MODEL, 'EulerAncestralDiscreteScheduler', 123, 0, 'job').parameters
	assert text == (
		'a red fox, fresh\n'
		'Negative prompt: EasyNegative\n'
		'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: 0123456789, '
		'Model: sd15/dream, VAE hash: c6a580b13a, VAE: ft-mse.safetensors, TI hashes: "EasyNegative: 66a7279a88dd", '
		'Version: diffusiond 0.1.0'
	)


def test_png_chunks_and_exif_user_comment() -> None:
	metadata = image_metadata(_spec(styles=['Ink']), MODEL, 'x', 123, 2, 'job-1')
	image = Image.new('RGB', (8, 8))
	png = Image.open(io.BytesIO(encode_image(image, ImageFormat.PNG, 90, metadata)))
	assert png.info['parameters'] == metadata.parameters
	record = json.loads(png.info['diffusiond'])
	assert (record['job_id'], record['index'], record['seed'], record['styles']) == ('job-1', 2, 123, ['Ink'])
	for fmt in (ImageFormat.JPEG, ImageFormat.WEBP):
		encoded = Image.open(io.BytesIO(encode_image(image, fmt, 80, metadata)))
		comment = encoded.getexif().get_ifd(ExifTags.IFD.Exif)[USER_COMMENT]
		assert comment[:8] == b'UNICODE\x00'
		assert comment[8:].decode('utf-16-be') == metadata.parameters


async def test_generated_images_carry_their_parameters(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	request = gen_pb.GenerateRequest(prompt='a fox', steps=2, seed=42, sampler=gen_pb.SAMPLER_EULER, guidance_scale=5)
	events = await collect(gen.Generate(request))
	image = Image.open(io.BytesIO(next(e for e in events if e.HasField('image')).image.data))
	assert (
		image.info['parameters']
		.splitlines()[-1]
		.startswith('Steps: 2, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 64x64')
	)
	assert json.loads(image.info['diffusiond'])['job_id'] == events[0].job_id
