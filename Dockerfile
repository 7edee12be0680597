# One image for every role: api, worker, checker, migrate, stream apply,
# seed, dlq, replay, content. The role is the command: `docker run
# quizstream api`.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t quizstream .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a code change reuses the downloaded dependencies.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# A static binary (no cgo), so the final image needs no libc. The version
# and commit are stamped into package app (what `quizstream version` and
# quizstream_build_info report); the Go version and module data come from
# the binary's build info.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/quizstream/quizstream/app.version=${VERSION} -X github.com/quizstream/quizstream/app.commit=${COMMIT}" \
      -o /out/quizstream ./cmd/quizstream \
 && echo 'quizstream:x:65532:65532::/nonexistent:/sbin/nologin' > /out/passwd \
 && echo 'quizstream:x:65532:' > /out/group

# Nothing but the binary, CA certificates (for TLS to PostgreSQL and NATS)
# and a non-root user: no shell, no package manager.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/quizstream /usr/local/bin/quizstream
USER 65532:65532
# The public API and the operations listener (/metrics, /livez, /readyz).
# The binary's defaults listen on loopback only: deploy/ sets LISTEN_ADDR
# and METRICS_ADDR to 0.0.0.0.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/quizstream"]
CMD ["api"]
