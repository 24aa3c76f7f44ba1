"""Embedded runtime and gRPC serving."""

__all__: list[str] = []
