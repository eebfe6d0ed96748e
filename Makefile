# ThreadWeave — `make run` and `make test` do all set-up on a fresh Debian machine with Swift.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server libhiredis-dev pkg-config

.PHONY: deps build test run bench clean

## deps: install redis-server, hiredis and pkg-config through apt when absent
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	pkg-config --exists hiredis 2>/dev/null || missing="$$missing libhiredis-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

build: deps
	$(SWIFT) build

## test: every test suite against a throwaway redis-server on a free port
test: deps
	$(SWIFT) build --build-tests
	scripts/with-redis.sh $(SWIFT) test --skip-build

clean:
	rm -rf .build .threadweave
