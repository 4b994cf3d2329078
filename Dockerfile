# The bundled example application (cmd/dbworker with the models of models/, its
# migrations, the demo writer) and rowgear's binlogbridge, on a small Debian
# image.
#
#   docker build -t rowgear .
#   docker run --rm rowgear dbworker -h
#
# The example config is /app/config/gearman.yml (ROWGEAR_CONFIG); its
# ${ROWGEAR_GEARMAN} and ${ROWGEAR_DATABASE_DSN} come from the environment
# (docker-compose.yml sets them).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
      ./cmd/dbworker ./cmd/binlogbridge ./cmd/demo

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin rowgear \
 && install -d -o rowgear /var/lib/rowgear
COPY --from=build /out/ /usr/local/bin/
COPY models/config/gearman.yml /app/config/gearman.yml
WORKDIR /app
ENV ROWGEAR_CONFIG=/app/config/gearman.yml
# dbworker's crash journals: a volume, so a restarted worker finds them.
ENV ROWGEAR_STATE_DIR=/var/lib/rowgear
USER rowgear
CMD ["dbworker", "-h"]
