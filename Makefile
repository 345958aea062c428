# Named tasks. `make help` lists them. They use cargo's own target dir (`./target`, or CARGO_TARGET_DIR if you set
# it), the same as plain `cargo`, so mixing `make` and `cargo` builds nothing twice.

.PHONY: help run test lint fmt bench ci

help:
	@echo "run    cargo run --release -- run workloads/burst.toml"
	@echo "test   cargo test"
	@echo "lint   cargo fmt --check and clippy -D warnings"
	@echo "fmt    cargo fmt"
	@echo "bench  benches/bench.sh (numbers to results/bench/)"
	@echo "ci     .ci/run, as CI runs it"

run:
	cargo run --release -- run workloads/burst.toml

test:
	cargo test

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench:
	benches/bench.sh

ci:
	bash .ci/run
