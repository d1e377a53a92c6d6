"""`python -m tools.peers`: the service against other model servers, each serving the same
model file with the same decoder, driven by the same wrk load (`tools.bench.side_by_side`)."""
