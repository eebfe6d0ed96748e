# threadweave: one image for every subcommand (function, worker, setup, rebuild, reclaim, bench).
# Build with `docker build -t threadweave .` on a machine with a Docker engine (the development
# machines have none; the Kubernetes manifests are validated without building it).

# Build stage: the same Swift release the project is developed and tested with, plus hiredis headers.
ARG SWIFT_VERSION=6.3
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis-dev make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The Makefile's release build (RELEASE_FLAGS): a statically linked Swift runtime and Foundation leave
# hiredis as the only extra library at run time; scripts/link-order.txt lays out the code it runs.
RUN make release-build \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/threadweave" /out/threadweave

# Runtime stage: hiredis and CA certificates, nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis0.14 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 threadweave \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin threadweave
COPY --from=build /out/threadweave /usr/local/bin/threadweave
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["threadweave"]
