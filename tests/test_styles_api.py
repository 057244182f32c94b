"""StyleService through the generated stubs, and styles in Generate."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from diffusiond.server.styles.builtin import BUILTIN_STYLES
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, next_of, rpc_error, until_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


async def test_builtins_crud_and_names(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		stub = style_grpc.StyleServiceStub(chan)
		listed = (await stub.ListStyles(style_pb.ListStylesRequest())).styles
		assert sorted(style.name for style in listed) == sorted(name for name, *_ in BUILTIN_STYLES)
		assert all(style.builtin for style in listed)
		new = style_pb.Style(name='Ink', prompt='ink drawing of {prompt}', negative_prompt='color', tags=['art'])
		created = (await stub.CreateStyle(style_pb.CreateStyleRequest(style=new))).style
		assert (created.name, created.builtin, list(created.tags)) == ('Ink', False, ['art'])
		for bad, code in (
			(style_pb.Style(name='ink', prompt='x'), grpc.StatusCode.ALREADY_EXISTS),
			(style_pb.Style(name='<bad>'), grpc.StatusCode.INVALID_ARGUMENT),
			(style_pb.Style(prompt='no name'), grpc.StatusCode.INVALID_ARGUMENT),
		):
			assert (await rpc_error(stub.CreateStyle(style_pb.CreateStyleRequest(style=bad)))).code() == code
		rename = style_pb.UpdateStyleRequest(
			style=style_pb.Style(id='INK', name='Ink drawing'), update_mask=field_mask_pb2.FieldMask(paths=['name'])
		)
		renamed = (await stub.UpdateStyle(rename)).style
		assert (renamed.name, renamed.prompt) == ('Ink drawing', 'ink drawing of {prompt}')
		taken = style_pb.UpdateStyleRequest(
			style=style_pb.Style(id=renamed.id, name='anime'), update_mask=field_mask_pb2.FieldMask(paths=['name'])
		)
		assert (await rpc_error(stub.UpdateStyle(taken))).code() == grpc.StatusCode.ALREADY_EXISTS
		assert [s.name for s in (await stub.ListStyles(style_pb.ListStylesRequest(query='INK'))).styles] == [
			'Ink drawing'
		]
		await stub.DeleteStyle(style_pb.DeleteStyleRequest(style='Anime'))
		missing = await rpc_error(stub.GetStyle(style_pb.GetStyleRequest(style='Anime')))
		assert missing.code() == grpc.StatusCode.NOT_FOUND
	await daemon.shutdown(0.0)
	again = await start_fake()  # the same data folder: deleted built-ins stay deleted
	async with grpc.aio.insecure_channel(f'127.0.0.1:{again.port}') as chan:
		names = [
			s.name for s in (await style_grpc.StyleServiceStub(chan).ListStyles(style_pb.ListStylesRequest())).styles
		]
		assert 'Anime' not in names
		assert 'Ink drawing' in names


async def test_import_export_all_or_nothing(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		stub = style_grpc.StyleServiceStub(chan)
		bad = b'name,prompt,negative_prompt\nFine,a,b\nBroken,a,b,c\n'
		error = await rpc_error(stub.ImportStyles(style_pb.ImportStylesRequest(csv=bad)))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert 'line 3' in str(error.details())
		assert (await stub.GetStyle(style_pb.GetStyleRequest(style='Photographic'))).style.builtin
		with_fine = await rpc_error(stub.GetStyle(style_pb.GetStyleRequest(style='Fine')))
		assert with_fine.code() == grpc.StatusCode.NOT_FOUND, 'nothing of a malformed file is imported'
		good = '\ufeffname,prompt,negative_prompt\nFine,"fine {prompt}",b\nPhotographic,changed,\n'.encode()
		first = await stub.ImportStyles(style_pb.ImportStylesRequest(csv=good))
		assert (list(first.created), list(first.updated), list(first.skipped)) == (['Fine'], [], ['Photographic'])
		second = await stub.ImportStyles(style_pb.ImportStylesRequest(csv=good, overwrite=True))
		assert (list(second.created), list(second.updated), list(second.skipped)) == ([], ['Photographic'], ['Fine'])
		exported = await stub.ExportStyles(style_pb.ExportStylesRequest())
		assert exported.count == len(BUILTIN_STYLES) + 1
		assert b'Fine,fine {prompt},b' in exported.csv
		assert (await stub.ImportStyles(style_pb.ImportStylesRequest(csv=exported.csv))).created == []


async def test_styles_expand_before_the_pipeline(start_fake: StartDaemon) -> None:
	backend = FakeEngine()
	daemon = await start_fake(backend)
	chan, gen = stubs(daemon)
	async with chan:
		request = gen_pb.GenerateRequest(
			prompt='a fox', negative_prompt='blurry', steps=1, seed=1, styles=['photographic', 'Quality boost']
		)
		call = gen.Generate(request)
		started = (await next_of(call, 'started')).started
		await collect(call)
		spec = backend.runs[-1]
		assert spec.prompt == started.prompt
		assert spec.prompt.startswith('cinematic photo of a fox, 35mm')
		assert spec.prompt.endswith('masterpiece, best quality, highly detailed')
		assert spec.negative_prompt.startswith('blurry, drawing')
		assert list(started.styles) == ['Photographic', 'Quality boost']
		for styles, code in (
			(['nope'], grpc.StatusCode.NOT_FOUND),
			(['Anime', 'anime'], grpc.StatusCode.INVALID_ARGUMENT),
		):
			_, error = await until_error(gen.Generate(gen_pb.GenerateRequest(prompt='x', styles=styles)))
			assert error.code() == code
		style = (await style_grpc.StyleServiceStub(chan).GetStyle(style_pb.GetStyleRequest(style='Photographic'))).style
		assert style.HasField('last_used_time')


async def test_search_text_is_literal_and_bounded(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, _ = stubs(daemon)
	async with chan:
		styles = style_grpc.StyleServiceStub(chan)
		style = style_pb.Style(name='percent', prompt='{prompt}, 100% detail')
		await styles.CreateStyle(style_pb.CreateStyleRequest(style=style))
		found = await styles.ListStyles(style_pb.ListStylesRequest(query='%'))
		underscore = await styles.ListStyles(style_pb.ListStylesRequest(query='_'))
		too_long = await rpc_error(styles.ListStyles(style_pb.ListStylesRequest(query='x' * 501)))
	assert [item.name for item in found.styles] == ['percent']  # not every style: % is no wildcard
	assert not underscore.styles
	assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'at most 500 characters' in str(too_long.details())
