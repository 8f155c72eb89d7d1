# syntax=docker/dockerfile:1
# A small static image: build against musl, run as non-root from a distroless base.

FROM docker.io/library/rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin patchpilot \
 && install -D -m 0755 target/release/patchpilot /out/patchpilot \
 && strip /out/patchpilot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/patchpilot /usr/local/bin/patchpilot
# The distroless "nonroot" user; the chart also sets runAsNonRoot and a read-only root.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/patchpilot"]
CMD ["run", "--leader-elect", "--log-format=json"]
