#!/usr/bin/env bash
# Install the Debian packages that some tests need, when they are missing and
# this shell may install packages. Otherwise list what is missing; the tests
# that need a missing package then skip with that reason (or fail under CI=true).
set -u

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/gatelab-apt.log 2>&1 \
    || { apt-get update -q >>/tmp/gatelab-apt.log 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/gatelab-apt.log 2>&1; }; then
    exit 0
  fi
  echo "could not install ${missing[*]}; see /tmp/gatelab-apt.log"
else
  echo "missing Debian packages: ${missing[*]} (run as root with apt-get to install them)"
fi
exit 0
