"""Generated gRPC stubs for the Open Inference Protocol, package `inference` (see protos/)."""
