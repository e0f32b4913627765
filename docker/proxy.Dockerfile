# The install phase's way out: tinyproxy (Debian's), a forward proxy that assay configures per
# install with an allow-list of registry host names; install containers sit on an internal
# network whose only other member is this proxy.
ARG BASE=assay-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tinyproxy \
 && rm -rf /var/lib/apt/lists/* \
 && tinyproxy -v
USER nobody
