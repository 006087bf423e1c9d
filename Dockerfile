# syntax=docker/dockerfile:1
#
# Auth service image: compiled JavaScript on plain Node, production dependencies only.
#
#   docker build -t auth-service .
#   docker run -p 3000:3000 -v auth-data:/data \
#     -e JWT_PRIVATE_KEY_FILE=/run/secrets/jwt.pem -v "$PWD/jwt.pem:/run/secrets/jwt.pem:ro" \
#     auth-service
#
# Signing key: with NODE_ENV=production (set below) the service refuses to generate a
# development signing key and will not start unless JWT_PRIVATE_KEY (the PEM itself, "\n"
# escapes allowed) or JWT_PRIVATE_KEY_FILE (a path, e.g. a mounted secret) is set; with
# JWT_ALGORITHM=HS256 it needs JWT_SECRET (>= 32 bytes) instead. See src/auth/keys.ts and
# src/config.ts. Generate an Ed25519 key with:
#   openssl genpkey -algorithm ed25519 -out jwt.pem
# Bake no key into the image.
#
# Storage: without DATABASE_URL the service uses the embedded PGlite in $DATA_DIR/pglite (the
# /data volume) and applies migrations itself at start-up. With DATABASE_URL (PostgreSQL) it
# refuses to serve on a schema that is behind: run the migrations first, with the same image:
#   docker run --rm -e DATABASE_URL=postgres://... auth-service node dist/scripts/migrate.js
#
# Issuer: set PUBLIC_URL to the URL clients reach the service at (https://auth.example.com). It is
# the `iss` of every token and the base of the metadata's URLs; the default, http://HOST:PORT,
# would be http://0.0.0.0:3000 here. Machine clients (docs/clients.md): mount the clients file
# read-only and set SERVICE_CLIENTS_FILE; a new client's entry comes from
#   docker run --rm auth-service node dist/scripts/client.js create billing --scope introspect

# Node 24 LTS on Debian 13 (trixie), the current Debian stable. CI also runs the test suite on
# Node 24 (.ci/run); package.json "engines" lists the supported versions.
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: all dependencies, compile TypeScript to dist/ ----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
COPY migrations ./migrations
COPY scripts ./scripts
# dist/src/server.js, dist/scripts/migrate.js, and dist/migrations/*.js, which Kysely's
# FileMigrationProvider loads from ../../migrations relative to dist/src/db/migrate.js.
RUN npm run build

# ---- runtime: production dependencies and dist/ only -------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json stays in the image: its "type": "module" makes Node load dist/**/*.js as ESM.
COPY package.json package-lock.json ./
# tsx and esbuild are listed under dependencies but the compiled server does not use them (they
# serve `npm start`'s transpile step and `npm run migrate` on the sources); installed regardless.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

# The internal listener (GET /metrics, GET /docs; docs/security.md, "Internal endpoints and
# headers") binds 0.0.0.0 too: in a container 127.0.0.1 is unreachable for any scraper, and the
# boundary is what is published. Publish 3000 only; keep 9100 to the cluster network.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    INTERNAL_HOST=0.0.0.0 \
    INTERNAL_PORT=9100 \
    DATA_DIR=/data
# Created and owned by `node` before VOLUME, so a new named volume starts out writable by it.
# (A bind mount keeps the host directory's ownership: make it writable by uid 1000.)
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]

USER node
# 3000: the API (public). 9100: /metrics and /docs (internal: never publish it to the outside).
EXPOSE 3000 9100

# Ready = the process answers and the database is reachable (503 otherwise), on the public port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM (docker stop) drains in-flight requests and closes the database (close-with-grace,
# 10 s); keep docker's stop timeout above that.
# --max-semi-space-size: see bench/PROFILE.md, "verify" (fewer young-generation collections).
CMD ["node", "--max-semi-space-size=64", "dist/src/server.js"]
