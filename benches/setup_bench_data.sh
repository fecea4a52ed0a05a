#!/bin/sh
# Installs the optional data of benches/bench_learning.py: Debian's Fashion-MNIST (all 60,000 /
# 10,000 images, under /usr/share/datasets/fashion-mnist). Needs root (or sudo) and apt.
set -e
if [ -d /usr/share/datasets/fashion-mnist ]; then
    echo "Fashion-MNIST already installed: /usr/share/datasets/fashion-mnist"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get install -y dataset-fashion-mnist
dpkg -L dataset-fashion-mnist | grep 'ubyte.gz$'
