"""RefreshModels and RefreshLoras answer alike: what one rescan of the folder found."""

from diffusiond.server.catalog.schemas import RefreshResult


def refresh_counts(result: RefreshResult) -> dict[str, int]:
	"""The fields both refresh responses share."""
	return result.model_dump(include={'added', 'removed', 'changed', 'unchanged', 'restored'})
