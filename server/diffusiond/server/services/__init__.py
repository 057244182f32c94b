"""gRPC servicers: validate, call the domain, convert to protobuf. One module per proto service."""
