# ThreadWeave — `make run` and `make test` do all set-up on a fresh Debian machine with Swift.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server libhiredis-dev curl lua5.1 openssl
BIN = $$($(SWIFT) build --show-bin-path)/threadweave
# The binary that ships: built exactly as the Dockerfile builds it (`make release-build`).
# One section per function (Swift and C, dependencies too) and scripts/link-order.txt put the code the
# processes run together, and the executable exports no symbols: an idle function process maps 25 MiB of
# the binary instead of 32 (docs/ARCHITECTURE.md, "The release link").
RELEASE_FLAGS := -c release --static-swift-stdlib \
	-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
	-Xlinker --section-ordering-file=$(CURDIR)/scripts/link-order.txt -Xlinker --no-export-dynamic
# The test suites run SwiftNIO strict: work handed to an event loop that has shut down (which NIO
# otherwise only prints, and means to make a crash) stops the test process, tests and children alike.
NIO_STRICT := SWIFTNIO_STRICT=1
RELEASE_BIN = $$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/threadweave

.PHONY: set-version deps lint-lua build release release-build link-order test test-cluster test-unit bench-http bench-http-cluster bench-http-functions test-release run bench bench-watchers bench-read-model bench-cluster manifests k8s-validate k8s-validate-selftest clean

## set-version: VERSION=x.y.z sets what `threadweave --version` prints (Sources/threadweave/Version.swift)
## and the image tag every Kubernetes container runs (k8s/base/kustomization.yaml)
set-version:
	@echo "$(VERSION)" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$' || { echo "usage: make set-version VERSION=x.y.z"; exit 2; }
	sed -i -E 's/(static let current = ")[^"]*(")/\1$(VERSION)\2/' Sources/threadweave/Version.swift
	sed -i -E 's/^(    newTag: ")[^"]*(")/\1$(VERSION)\2/' k8s/base/kustomization.yaml k8s/overlays/*/kustomization.yaml
	@grep -n 'static let current' Sources/threadweave/Version.swift; grep -n 'newTag' k8s/base/kustomization.yaml k8s/overlays/*/kustomization.yaml

## deps: install redis-server, hiredis, curl, lua5.1 (the Lua linter) and openssl (the TLS tests' certificates) through apt when absent
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -f /usr/include/hiredis/hiredis.h ] || missing="$$missing libhiredis-dev"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v luac5.1 >/dev/null || missing="$$missing lua5.1"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

## lint-lua: the Redis Function libraries compile as Lua 5.1 (Redis's Lua) and assign no
## globals (Redis refuses that at run time); the tests then load them into a real Redis
lint-lua: deps
	@for file in Sources/*/Lua/*.lua; do \
		luac5.1 -p "$$file" || exit 1; \
		if luac5.1 -p -l "$$file" | grep -q SETGLOBAL; then \
			echo "$$file assigns a global:"; luac5.1 -p -l "$$file" | grep SETGLOBAL; exit 1; \
		fi; \
	done; echo "lint-lua: $$(ls Sources/*/Lua/*.lua | wc -l) files ok"

build: deps
	$(SWIFT) build --product threadweave

## test: every test suite against a throwaway redis-server on a free port (`threadweave redis-server`
## of the debug build, through scripts/with_redis.py, so the build comes first); serial, so
## timing-sensitive tests (timeouts, failover) never compete with each other for 2 cores; first,
## bench-http's self-test of its target verdicts (no server)
test: deps lint-lua
	scripts/bench_http.py --self-test
	$(SWIFT) build --build-tests
	$(NIO_STRICT) scripts/with_redis.py --binary "$(BIN)" $(SWIFT) test --skip-build --no-parallel

## test-cluster: against a throwaway Redis Cluster (3 primaries, 3 replicas, free loopback ports,
## scripts/with_redis_cluster.py): the cluster client's routing, the store contract, the read
## model's worker and convergence, and the README walk-through against serve; last, on the same
## cluster, a primary killed under writers (ClusterFailoverTests)
# The take-over test itself sends one XREADGROUP over every partition: CROSSSLOT on a cluster.
CLUSTER_TESTS := RedisClusterTests|EventStoreIntegrationTests|ReadModelIntegrationTests|theWalkthroughPassesAgainstServeOnARedisCluster|LocalClusterTests
test-cluster: deps
	$(SWIFT) build --build-tests
	$(NIO_STRICT) scripts/with_redis_cluster.py sh -c "$(SWIFT) test --skip-build --no-parallel --filter '$(CLUSTER_TESTS)' \
		&& TEST_REDIS_FAILOVER=1 $(SWIFT) test --skip-build --filter ClusterFailoverTests"

## test-unit: the unit suites alone (no redis-server, no network): seconds, for the edit loop
UNIT_SUITES := RedisClientTests|DeploymentTests|ThreadDomainTests|EventStoreTests|ReadModelTests|ThreadFunctionsTests|FunctionRuntimeTests|APIContractTests
test-unit:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '^($(UNIT_SUITES))\.'

## release: the release binary, as the container image ships it (RELEASE_FLAGS)
release: deps release-build

## release-build: the same without installing anything (the Dockerfile's build stage runs it)
release-build:
	$(SWIFT) build $(RELEASE_FLAGS) --product threadweave

## link-order: profile the release binary's processes under callgrind and write scripts/link-order.txt,
## the order the release link lays functions out in; again after larger changes (needs valgrind)
link-order: release
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq valgrind; }
	scripts/link_order.py --binary "$(RELEASE_BIN)"

## test-release: the black-box suites (README walk-through against serve, function processes,
## multi-process appends, worker failover, the local-cluster topology) against the release binary,
## after checking that the release link laid its code out by scripts/link-order.txt
test-release: release
	scripts/link_order.py --check "$(RELEASE_BIN)"
	$(SWIFT) build --build-tests
	$(NIO_STRICT) THREADWEAVE_BIN="$(RELEASE_BIN)" scripts/with_redis.py $(SWIFT) test --skip-build --no-parallel --filter ThreadweaveCLITests

## test-api: fuzz `serve` (the release binary, built first if stale) from its own
## /openapi.json with schemathesis against a private redis-server: every operation, stateful
## links, every check; then show refused requests wrote nothing; then generate a Python client from
## the served document and walk through a thread's life with it (scripts/api_fuzz.py)
API_VENV := .build-tools/venv
.PHONY: test-api
test-api: release $(API_VENV)/.installed
	@echo "test-api: fuzzing $(RELEASE_BIN)"
	scripts/api_fuzz.py --binary "$(RELEASE_BIN)"

## the pinned schemathesis, openapi-spec-validator and openapi-python-client, reinstalled when the pins change
$(API_VENV)/.installed: scripts/api-fuzz-requirements.txt
	@python3 -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }
	[ -x $(API_VENV)/bin/pip ] || python3 -m venv $(API_VENV)
	$(API_VENV)/bin/pip install -q --disable-pip-version-check -r scripts/api-fuzz-requirements.txt
	touch $@

## run: serve every function on http://127.0.0.1:8080 (own redis-server under .threadweave/ unless REDIS_URL is set)
run: build
	@echo "ThreadWeave on http://127.0.0.1:8080 — try the walk-through in another terminal:"
	@echo "  BASE_URL=http://127.0.0.1:8080 scripts/walkthrough.sh"
	exec "$(BIN)" serve --host 127.0.0.1 --port 8080

## bench: the write-path load generator (release build) against a throwaway redis-server;
## hot-thread compares the same writers spread over 256 threads and all on one thread;
## rebuild times `threadweave rebuild` over 1,000,000 events; then bench-watchers and bench-read-model
bench: release
	scripts/with_redis.py --binary "$(RELEASE_BIN)" sh -c 'bin="$(RELEASE_BIN)"; \
		echo "== 64 writers over 16 threads"; "$$bin" bench --redis-url "$$TEST_REDIS_URL" --writers 64 --threads 16 --commands 200 --log-level error; \
		echo "== 32 writers racing on one thread"; "$$bin" bench --redis-url "$$TEST_REDIS_URL" --namespace race --writers 32 --commands 50 \
			--thread 01J0000000000000000000BENC --admin 01J0000000000000000000ADMN --log-level error; \
		echo "== hot thread: the same 64 writers from 2 processes, spread over 256 threads, then on one"; \
		scripts/bench_hot_thread.py --binary "$$bin"; \
		echo "== rebuild of 1,000,000 events"; scripts/bench_rebuild.py --binary "$$bin"'
	$(MAKE) --no-print-directory bench-watchers bench-read-model bench-cluster

## bench-cluster: the write path and redis-benchmark XADD on one node, then on a 3-primary cluster
bench-cluster: release
	scripts/with_redis.py --binary "$(RELEASE_BIN)" scripts/bench_cluster.py --binary "$(RELEASE_BIN)" --label "1 node" $(CLUSTER_BENCH_ARGS)
	THREADWEAVE_BIN="$(RELEASE_BIN)" scripts/with_redis_cluster.py scripts/bench_cluster.py --binary "$(RELEASE_BIN)" \
		--label "3 primaries + 3 replicas" $(CLUSTER_BENCH_ARGS)

## bench-watchers: 5,000 SSE streams on one serve: delivery latency to every stream, Redis clients held
bench-watchers: release
	scripts/bench_watchers.py --binary "$(RELEASE_BIN)" $(WATCHERS_ARGS)

## bench-read-model: big-thread (10,000 members: append -> visible) and list-threads (an account in 1,000 threads)
bench-read-model: release
	scripts/bench_read_model.py --binary "$(RELEASE_BIN)" $(READ_MODEL_ARGS)

## bench-http: serve over HTTP (wrk: write, read, mixed, mixed with SSE watchers; one open-loop run)
## side by side with redis-benchmark on the same server; CPU per request; docs/bench-http.{json,svg}
bench-http: release
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	scripts/bench_http.py --binary "$(RELEASE_BIN)" $(BENCH_HTTP_ARGS)

## bench-http-cluster: the same against a Redis Cluster of 3 primaries and 3 replicas; docs/bench-http-cluster.{json,svg}
bench-http-cluster: release
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	scripts/bench_http.py --binary "$(RELEASE_BIN)" --cluster --out docs/bench-http-cluster.json $(BENCH_HTTP_ARGS)

## bench-http-functions: the same against the functions as deployed (a process per function, a worker
## process) instead of serve; docs/bench-http-functions.{json,svg}
bench-http-functions: release
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	scripts/bench_http.py --binary "$(RELEASE_BIN)" --functions --out docs/bench-http-functions.json $(BENCH_HTTP_ARGS)

## manifests: regenerate k8s/base/functions from functions/*.json
manifests: build
	"$(BIN)" manifests

## k8s-validate: render every overlay with kubectl kustomize (v4+), validate it strictly, then check the generated manifests are current
k8s-validate: build
	scripts/k8s-validate.sh
	"$(BIN)" manifests --check

## k8s-validate-selftest: prove each validation rule fails on a broken copy of k8s/ (needs kubectl, kustomize v4+)
k8s-validate-selftest:
	scripts/k8s-validate.sh --self-test

## local-cluster: the Kubernetes topology as local processes (own redis-server, setup, one process per
## function, two workers, one router URL); prints the port table; Ctrl-C stops what it started
.PHONY: local-cluster local-cluster-test
local-cluster: build
	exec env THREADWEAVE_BIN="$(BIN)" scripts/local-cluster.sh

## local-cluster-test: the topology scenario (LocalClusterTests) against scripts/local-cluster.sh --background
local-cluster-test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter LocalClusterTests

## chaos: fault-injection suite (scripts/chaos.py, docs/RELIABILITY.md) against the release build, or
## $$THREADWEAVE_BIN when set: own redis-servers on free ports, Redis/worker/process kills, freeze, SIGTERM; <= 8 min
.PHONY: chaos
chaos: deps
	@[ -n "$$THREADWEAVE_BIN" ] || $(MAKE) --no-print-directory release
	THREADWEAVE_BIN="$${THREADWEAVE_BIN:-$(RELEASE_BIN)}" sh -c 'python3 scripts/chaos.py --self-test && python3 scripts/chaos.py'

clean:
	rm -rf .build .threadweave

## soak: 10 minutes at half of peak load against the release binary, with its own redis-server,
## function processes and worker; RSS, used_memory, pending, log length and latency over time to
## docs/soak.csv and docs/soak.png, then a verdict (flat / growing). SOAK_ARGS="--duration 60" for a quick check
.PHONY: soak
soak: deps
	@[ -n "$$THREADWEAVE_BIN" ] || $(MAKE) --no-print-directory release
	THREADWEAVE_BIN="$${THREADWEAVE_BIN:-$(RELEASE_BIN)}" scripts/soak.py $(SOAK_ARGS)
