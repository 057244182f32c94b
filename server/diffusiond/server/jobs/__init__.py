"""The jobs side: accept, validate, queue, batch, estimate, stream, cancel, record. It never imports torch."""
