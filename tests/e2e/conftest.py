"""End-to-end tests start real `qlara-sidecar up` processes (the `make_sidecar` fixture in
tests/conftest.py), on free ports, in tmp dirs."""
