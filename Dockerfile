# The vpsie-runbook image: one image, three entry points, all talking to an external Temporal server
# (TEMPORAL_ADDRESS is required here: the embedded dev server is for running on a workstation).
#   node dist/main.js            the worker (what `npm start` runs after building; the default)
#   node dist/receiver/main.js   the Alertmanager receiver on its own (`npm run receiver`)
#   node dist/cli/main.js        the `vpsie-runbook` command line
# It runs as the unprivileged user `node` of the base image, by number (uid/gid 1000, so that Kubernetes'
# runAsNonRoot can check it) and writes nothing but /tmp, so it runs with a read-only root
# filesystem (deploy/kubernetes mounts an emptyDir on /tmp).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# glibc's allocator with two arenas rather than eight per core: the worker's native side (the SDK's Core, its
# threads) then keeps less memory it no longer uses (measured in README "Benchmark"; `npm start` sets it too)
ENV MALLOC_ARENA_MAX=2
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER 1000:1000
# receiver, /metrics
EXPOSE 8080 9464
CMD ["node", "dist/main.js"]
