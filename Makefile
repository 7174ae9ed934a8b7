# Makefile for ngx_http_ciba_module, a dynamic module for Debian 12's
# nginx 1.22.1.  Everything it builds or downloads goes under build/
# (never committed); the shell work is done by tools/build/*.sh.
#
#   make deps            Debian packages + libjwt >= 3 (needs root)
#   make module          build/ngx_http_ciba_module.so
#   make demo            the whole product on loopback (tools/demo.sh):
#                        dev AS, tool API, nginx + module, a round trip
#   make run             the tokens-only demo (tools/run-demo.sh), no AS
#   make check           the README's test command, and CI's: make test,
#                        then make test-nginx-upstream
#   make test [T=t/x.t]  the Test::Nginx suite against the stock nginx
#   make test-valgrind   the same, nginx running under valgrind
#   make asan            the same against an ASan nginx (module static)
#   make test-nginx-upstream  the same against nginx.org's nginx 1.26.3
#                        built from source (alias: make test-nginx-1.26)
#   make soak            the load tests' long versions (SOAK=1)
#   make bench           benchmarks (tools/bench): build/bench/results.md
#   make fuzz            libFuzzer targets (tools/fuzz), FUZZ_SECONDS each
#   make clean           remove build products and test server roots
#   make distclean       remove all of build/ (libjwt, downloads too)

SHELL := /bin/bash

# the nginx the module is for, and nginx-dev's build tree
NGINX_BIN ?= /usr/sbin/nginx
NGX_SRC   ?= /usr/share/nginx/src

# tests: one file or directory with T=..., the listen address, the
# server root, extra prove options (e.g. PROVE_FLAGS=-v)
T             ?= t
TEST_PORT     ?= 127.0.0.1:1984
TEST_SERVROOT ?= $(CURDIR)/t/servroot
ASAN_SERVROOT ?= $(CURDIR)/t/servroot-asan
PROVE_FLAGS   ?=
# make soak: the files run with SOAK=1
SOAK_T        ?= t/110-soak-concurrency.t t/111-soak-reload.t

# make test-nginx-upstream: the upstream nginx version (its tarball's
# SHA-256 is pinned in tools/build/nginx-upstream.sh), the listen address
# and the server root of its test run
NGINX_UPSTREAM_VERSION ?= 1.26.3
UPSTREAM_TEST_PORT     ?= 127.0.0.1:1990
UPSTREAM_SERVROOT      ?= $(CURDIR)/t/servroot-nginx-$(NGINX_UPSTREAM_VERSION)

# extra compiler options for our code (nginx's own auto/cc already
# compiles with -W -Wall -Wpointer-arith -Werror)
CIBA_CC_OPT ?=

MODULE_SO   := build/ngx_http_ciba_module.so
NGX_DYN     := build/ngx-dyn
ASAN_NGINX  := build/asan/nginx
MODULE_SRCS := $(wildcard ngx_http_ciba_module/*)
# exist only after "make deps" on a fresh machine
SYSTEM_DEPS := $(wildcard $(NGX_SRC)/conf_flags $(NGINX_BIN) build/libjwt/lib/libjwt.a)

export NGINX_BIN NGX_SRC CIBA_CC_OPT PROVE_FLAGS

TEST_ENV = TEST_NGINX_SERVER_PORT='$(TEST_PORT)' \
           TEST_NGINX_SERVROOT='$(TEST_SERVROOT)'

.PHONY: all deps module demo run test test-valgrind soak asan clean \
        distclean

# Default: build the module.
all: module

# Install the Debian packages (apt only when one is missing) and build
# libjwt >= 3 into build/libjwt unless it or a system libjwt 3 is there.
deps:
	@tools/build/deps.sh
	@tools/build/libjwt.sh
	@tools/build/npm.sh

# Build the dynamic module and check that the system nginx loads it.
module: $(MODULE_SO)

# Configure nginx-dev's tree for the module: again only when config (or
# the installed nginx) changes.
$(NGX_DYN)/objs/Makefile: config tools/build/module-configure.sh $(SYSTEM_DEPS) | deps
	@tools/build/module-configure.sh '$(CURDIR)/$(NGX_DYN)'

# Rebuild the module when any of its sources changes.
$(MODULE_SO): $(NGX_DYN)/objs/Makefile $(MODULE_SRCS) tools/build/module-build.sh
	@tools/build/module-build.sh '$(CURDIR)/$(NGX_DYN)' '$(CURDIR)/$(MODULE_SO)'

# The demo: the development AS, a sample tool API and the stock nginx
# with the module; plays an approved and a denied action, then runs until
# Ctrl-C (see tools/demo.sh).
demo: deps module
	@CIBA_NGINX='$(NGINX_BIN)' CIBA_MODULE='$(CURDIR)/$(MODULE_SO)' \
	 tools/demo.sh

# The tokens-only demo: approvals minted with a local key, no AS; runs
# until Ctrl-C (see tools/run-demo.sh).
run: deps module
	@CIBA_NGINX='$(NGINX_BIN)' CIBA_MODULE='$(CURDIR)/$(MODULE_SO)' \
	 tools/run-demo.sh

# Run the Test::Nginx suite (prove -r t, or T=...) against the stock
# nginx with the module loaded.
test: deps module
	@TEST_NGINX_BINARY='$(NGINX_BIN)' \
	 TEST_NGINX_LOAD_MODULES='$(CURDIR)/$(MODULE_SO)' \
	 $(TEST_ENV) tools/build/run-tests.sh $(T)

# The whole suite against the stock nginx, then against upstream nginx
# built from source (one after the other: a few test files use fixed
# ports).  The README's test command, and what CI runs (.ci/run).
.PHONY: check
check:
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory test-nginx-upstream

# The same with every nginx run under valgrind (--vgdb=no: workers that
# drop root cannot unlink the vgdb pipes and valgrind would say so).
test-valgrind: deps module
	@TEST_NGINX_BINARY='$(NGINX_BIN)' \
	 TEST_NGINX_LOAD_MODULES='$(CURDIR)/$(MODULE_SO)' \
	 TEST_NGINX_USE_VALGRIND=1 VALGRIND_OPTS='--vgdb=no $(VALGRIND_OPTS)' \
	 $(TEST_ENV) tools/build/run-tests.sh $(T)

# The load tests in their long versions: a minute of reloads under load,
# more rounds of 500 concurrent uses (SOAK_T, with SOAK=1).
soak: deps module
	@SOAK=1 TEST_NGINX_BINARY='$(NGINX_BIN)' \
	 TEST_NGINX_LOAD_MODULES='$(CURDIR)/$(MODULE_SO)' \
	 $(TEST_ENV) tools/build/run-tests.sh $(SOAK_T)

# Benchmarks on loopback (ports 20401-20457): the module against a plain
# proxy, the pending and approved paths, floods, the njs and external
# validator peers, zone memory; writes build/bench/results.md and .json
# (BENCH_DURATION, BENCH_ROUNDS: see tools/bench/README.md).
.PHONY: bench
bench: deps module
	@CIBA_NGINX='$(NGINX_BIN)' CIBA_MODULE='$(CURDIR)/$(MODULE_SO)' \
	 tools/bench/bench.sh

# Fuzz the module's parsers (tools/fuzz, see its README.md): build the
# libFuzzer targets (clang, ASan, UBSan) into build/fuzz/bin, run each for
# FUZZ_SECONDS (FUZZ_TARGETS: some of them), one line per target; fails on
# any crash, leak or broken property (inputs in build/fuzz/artifacts).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
.PHONY: fuzz
fuzz: deps
	@tools/fuzz/build.sh $(FUZZ_TARGETS)
	@FUZZ_SECONDS='$(FUZZ_SECONDS)' tools/fuzz/run.sh $(FUZZ_TARGETS)

# Build upstream nginx $(NGINX_UPSTREAM_VERSION) from Debian's copy of
# the pristine tarball (SHA-256 pinned, checked against trixie's signed
# Sources index) with the module as a dynamic module, into
# build/nginx-VERSION, and run the suite (or T=...) against it.  When the
# archive cannot serve the verified tarball it prints "SKIPPED: ..." and
# succeeds; a failed build or test fails.
.PHONY: nginx-upstream test-nginx-upstream test-nginx-1.26
nginx-upstream: deps
	@NGINX_UPSTREAM_VERSION='$(NGINX_UPSTREAM_VERSION)' \
	 tools/build/nginx-upstream.sh build

test-nginx-upstream: deps
	@NGINX_UPSTREAM_VERSION='$(NGINX_UPSTREAM_VERSION)' \
	 TEST_NGINX_SERVER_PORT='$(UPSTREAM_TEST_PORT)' \
	 TEST_NGINX_SERVROOT='$(UPSTREAM_SERVROOT)' \
	 tools/build/nginx-upstream.sh test $(T)

test-nginx-1.26: test-nginx-upstream

# Build a debug nginx with AddressSanitizer and the module linked in
# statically (build/asan/nginx), run the suite against it, and fail on
# any AddressSanitizer report.  Server root: t/servroot-asan.
asan: deps $(ASAN_NGINX)
	@TEST_NGINX_SERVER_PORT='$(TEST_PORT)' \
	 TEST_NGINX_SERVROOT='$(ASAN_SERVROOT)' \
	 tools/build/asan-test.sh $(T)

# The ASan nginx: Debian's nginx source (downloaded once into build/src),
# configured again only when config changes; the module is recompiled
# whenever its sources change.
$(ASAN_NGINX): config $(MODULE_SRCS) tools/build/asan-build.sh $(SYSTEM_DEPS) | deps
	@tools/build/asan-build.sh

# Remove what the builds and tests made; keep libjwt and the downloads.
clean:
	rm -rf $(NGX_DYN) $(MODULE_SO) build/asan t/servroot t/servroot-*
	rm -rf build/nginx-[0-9]* build/src/nginx-[0-9]*

# Remove all of build/.
distclean: clean
	rm -rf build
