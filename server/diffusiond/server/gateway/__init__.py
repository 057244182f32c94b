"""The HTTP gateway: AUTOMATIC1111's `/sdapi/v1` web API and OpenAI's `/v1/images` API, served by FastAPI on
uvicorn inside the daemon's own event loop. Handlers are thin: they build the same domain requests the gRPC
services build (GenerateParams, UpscaleRequest) and run them through the same manager, queue, catalogs, history,
limits and token; domain errors answer through the one error table (error_status.py)."""
