# rvswitch — the commands a new user and CI need. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
APT_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config m4 libpcap-dev \
	iproute2 iputils-ping netsniff-ng iperf3 openvswitch-switch openvswitch-common tcpdump
STAMP := target/.deps-installed

.PHONY: deps build release run test lint bench bench-e2e clean test-kernel

# Installs the system packages the build and the tests need (once per machine).
deps: $(STAMP)
$(STAMP):
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "installing system packages: $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@mkdir -p target && touch $(STAMP)

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: deps lint
	$(CARGO) test --all-targets -- --test-threads=1

# The kernel datapath in a qemu guest (Debian's kernel carries openvswitch.ko). Also part of
# `make test` through tests/kernel_datapath.rs.
test-kernel: deps
	scripts/kernel-test/run.sh

bench: deps
	$(CARGO) bench --bench classifier --bench xlate

clean:
	$(CARGO) clean
