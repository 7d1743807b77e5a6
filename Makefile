# rvswitch — the commands a new user and CI need. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
APT_PACKAGES := clang llvm pkg-config \
	iproute2 iputils-ping ethtool netsniff-ng iperf3 openvswitch-switch openvswitch-common \
	tcpdump procps linux-perf
STAMP := target/.deps-installed

.PHONY: deps build release run test lint bench bench-e2e bench-latency topology-up topology-down clean test-kernel

# Installs the system packages the build and the tests need (once per machine).
deps: $(STAMP)
$(STAMP):
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "installing system packages: $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@if ! command -v cargo >/dev/null; then echo "cargo (Rust toolchain) is required" >&2; exit 1; fi
	@mkdir -p target && touch $(STAMP)

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release --bins

# The demo: two namespaces joined through rvswitch's br0 (config/switch.toml), in the
# foreground; Ctrl-C stops rvswitch and removes the topology.
run: release
	@scripts/run-demo.sh

topology-up:
	scripts/demo-topology.sh up

topology-down:
	scripts/demo-topology.sh down

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Every test: unit tests, and integration tests (root: namespaces, veths, AF_XDP).
test: deps lint
	$(CARGO) test --lib --bins --tests -- --test-threads=1
	$(CARGO) test --doc
	$(CARGO) test --benches

# The kernel datapath in a qemu guest (Debian's kernel carries openvswitch.ko). Also part of
# `make test` through tests/kernel_datapath.rs.
test-kernel: deps
	scripts/kernel-test/run.sh

bench: deps
	$(CARGO) bench --benches

# End-to-end throughput (root): trafgen -> rvswitch, then ovs-vswitchd -> XDP drop.
# Arguments: E2E_ARGS="seconds workloads...", e.g. E2E_ARGS="8 a b" (workloads a-d; see
# the header of benches/e2e/run.sh for E2E_SWITCHES, E2E_TX_FLUSH_US, E2E_HOG_NICE, ...).
bench-e2e: deps
	benches/e2e/run.sh $(E2E_ARGS)

# Round-trip latency through the switch (root): ping idle, beside a UDP and a TCP stream,
# for rvswitch, rvswitch without the batch wait, and ovs-vswitchd. LAT_ARGS="pings
# conditions...", e.g. LAT_ARGS="1000 idle udp" (see benches/e2e/latency.sh).
bench-latency: deps
	benches/e2e/latency.sh $(LAT_ARGS)

clean:
	$(CARGO) clean
