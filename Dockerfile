# syntax=docker/dockerfile:1
# One image for the three services: `docker run rockets:<version> ingest|sequencer|api`.
# Build stage: full dependencies and the TypeScript compiler. Runtime stage:
# production dependencies and the compiled JavaScript only, run as a non-root
# numeric user (so Kubernetes' runAsNonRoot can verify it).
#
# The base is pinned to a full version and Alpine release, so that a rebuild
# gets the Node the tests ran on (20.20.2, the last Node 20 release), not
# whatever a moving tag points at that day. Node 20 is past its end of life:
# moving to a supported LTS is a deliberate change of this line together with
# package.json's engines and the machines the tests run on (docs/operations.md).

ARG NODE_IMAGE=node:20.20.2-alpine3.23

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY web ./web
COPY scripts/build-console.mjs ./scripts/build-console.mjs
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/rockets
# The node user of the official image; numeric so that runAsNonRoot can check it.
USER 1000:1000
# ingest 8088, api 8080, sequencer's ops server 9090
EXPOSE 8088 8080 9090
ENTRYPOINT ["/usr/local/bin/rockets"]
CMD ["api"]
