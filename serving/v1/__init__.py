"""Generated gRPC stubs for baton.serving.v1 (see protos/)."""
