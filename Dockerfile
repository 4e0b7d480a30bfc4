# stylecam serve in a container: a CPU build (multi-stage), listening on 0.0.0.0:8080.
#
#   docker build -t stylecam .
#   docker run --rm -p 127.0.0.1:8080:8080 -e STYLECAM_TOKEN=change-me stylecam
#
# The built-in weights and styles are compiled into the binary, so the image needs no download.
# The live stream shows the test pattern; to stream a webcam, pass the device through and pick it:
#   docker run --rm -p 127.0.0.1:8080:8080 --device /dev/video0 stylecam \
#       serve --listen 0.0.0.0:8080 --source camera
# For CUDA and for several replicas, see docs/HTTP.md ("Beyond one machine").

FROM rust:1-bookworm AS build
# pkg-config and libclang for -sys crates, nasm for mozjpeg's SIMD, libudev for the camera list,
# FFmpeg's libraries for video files and MP4 recording (the default `video` feature).
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libclang-dev nasm libudev-dev \
        libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin stylecam \
 && strip target/release/stylecam

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libudev1 ca-certificates \
        libavcodec59 libavformat59 libavutil57 libswscale6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /data stylecam
COPY --from=build /src/target/release/stylecam /usr/local/bin/stylecam
USER stylecam
# Target cache and settings live in /data (a volume, if they should outlive the container).
ENV STYLECAM_DATA_DIR=/data STYLECAM_CONFIG_DIR=/data/config
EXPOSE 8080
ENTRYPOINT ["stylecam"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--source", "test-pattern"]
