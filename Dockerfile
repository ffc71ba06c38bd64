# syntax=docker/dockerfile:1
# One image for every face of podgate: `serve` (web app + API), `agent --cluster` (sidecar beside
# openvpn in the server pod) and `server run` (openvpn + agent on a plain host or container).

# ---- build: bundle the CLI with esbuild (dist/bundle), then keep only production dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Toolchain only for native modules without a prebuilt binary for this platform (better-sqlite3, argon2).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/bundle.mjs
COPY src ./src
# the bundle precompiles the profile templates into itself
COPY templates ./templates
# The image runs the bundle only (what `bin` points at); tsc's output is for tests and types. The V8 code
# cache the script makes is accepted only under the V8 flags it was made with: the runtime's NODE_OPTIONS.
RUN NODE_OPTIONS=--max-semi-space-size=2 node scripts/bundle.mjs \
 && npm prune --omit=dev

# ---- runtime: node + openvpn + iptables + nftables (nft: the access table the agent keeps; the server
# pod's openvpn container runs this image too)
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends openvpn iptables nftables iproute2 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/bundle ./dist/bundle
COPY package.json ./
COPY templates ./templates
COPY public ./public
RUN chmod 0755 /app/dist/bundle/podgate.js \
 && ln -s /app/dist/bundle/podgate.js /usr/local/bin/podgate \
 && mkdir -p /data \
 && chown node:node /data
ENV NODE_ENV=production \
    PODGATE_DATA_DIR=/data \
    PODGATE_WEB_HOST=0.0.0.0 \
    PODGATE_WEB_PORT=8080
# V8's young generation capped at 2 MiB per semi-space (default 16): `serve` at 10,000 certificates
# keeps ~25-30 MB less resident under load, at no measurable cost in p95 (bench/web.ts prints both;
# docs/performance.md). bench/web.ts starts `serve` with the same options (SERVE_NODE_ARGS).
ENV NODE_OPTIONS=--max-semi-space-size=2
VOLUME ["/data"]
EXPOSE 8080
# Non-root by default (`serve`). openvpn needs root for the tun device and iptables: the server pod
# sets runAsUser 0 with only NET_ADMIN/MKNOD for that container, and `server run` needs --user root.
USER node
# Meaningful for `serve`; Kubernetes ignores HEALTHCHECK and uses the pod's probes instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PODGATE_WEB_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tini", "--", "podgate"]
CMD ["serve"]
