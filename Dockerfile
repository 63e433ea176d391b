# One image for every role of the lattice demo (docker-compose.yml): `wash` (host, deploy
# tool), the out-of-process provider binaries next to it, and the built actors.
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown wasm32-wasip1
WORKDIR /src
COPY . .
RUN bash scripts/build-actors.sh \
 && cargo build --release --locked -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/wash \
     /src/target/release/nimbus-httpserver-provider \
     /src/target/release/nimbus-keyvalue-provider /usr/local/bin/
COPY --from=build /src/actors/target/wasm /app/actors/target/wasm
COPY deploy /app/deploy
WORKDIR /data
ENTRYPOINT ["wash"]
CMD ["up"]
